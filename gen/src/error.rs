//! What can be wrong with the generator's options.

/// Why a [`Generator`](crate::Generator) cannot be built from its options.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// An option is out of range, or does not fit with another one. The
    /// text is the one `riposte gen` has always printed, which names the
    /// option as a `gen.` key.
    #[error("config key `gen.{option}`: {message}")]
    InvalidOption {
        /// The option's name in [`GenOptions`](crate::GenOptions), e.g.
        /// `pod_cidr`.
        option: &'static str,
        message: String,
    },
}
