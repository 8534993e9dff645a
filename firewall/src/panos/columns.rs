//! Where each field sits in a PAN-OS CSV line, per log type and layout.
//!
//! Indexes are 0-based, counted after the syslog header (index 0 is the
//! leading FUTURE_USE `1` of the classic layout). The classic orders are the
//! PAN-OS 11.1 ones (/work/shared/reference/panos-threat-log-fields.md for
//! THREAT; the PAN-OS "Traffic Log Fields" page for TRAFFIC): every release
//! only appended columns, so one table serves 6.x to 11.x and a field past
//! the end of an older line is simply absent.
//!
//! The Strata Logging Service default order ("Threat/Traffic Syslog Default
//! Field Order", with its leading HEADER `1` and EMPTY column) is the classic
//! order with ISO-8601 times, so it uses these tables too. The compact
//! Prisma Access forwarder layout (no leading `1`, no FUTURE_USE columns, no
//! Flags or Action Flags) has its own tables in [`super::prisma`].

/// A field the layout does not have.
pub(crate) const NONE: u16 = u16::MAX;

/// Declares [`Layout`] from one list of fields, and [`Layout::indices`]
/// from the same list: a field added to the layout cannot be left out of
/// [`Layout::last_index`].
macro_rules! layout {
    ($($(#[$doc:meta])* $field:ident,)*) => {
        /// Column index of every field the parsers read; [`NONE`] when the
        /// layout lacks it.
        #[derive(Debug, Clone, Copy)]
        pub(crate) struct Layout {
            /// Fewer columns than this is `TooFewColumns`: the width of the
            /// oldest real layout of the log type.
            pub min_columns: u16,
            $($(#[$doc])* pub $field: u16,)*
        }

        impl Layout {
            /// How many fields a layout places (`min_columns` aside).
            const FIELDS: usize = [$(stringify!($field)),*].len();

            /// Every field's column index, in the order they are declared.
            const fn indices(&self) -> [u16; Self::FIELDS] {
                [$(self.$field),*]
            }
        }
    };
}

layout! {
    receive_time,
    serial,
    subtype,
    generated_time,
    source_ip,
    destination_ip,
    nat_source_ip,
    nat_destination_ip,
    rule,
    source_user,
    destination_user,
    application,
    virtual_system,
    source_zone,
    destination_zone,
    inbound_interface,
    outbound_interface,
    session_id,
    repeat_count,
    source_port,
    destination_port,
    nat_source_port,
    nat_destination_port,
    protocol,
    action,
    /// THREAT "URL/Filename", the `misc` column.
    misc,
    threat_id,
    /// THREAT "Category": the URL category, or the verdict for WildFire.
    category,
    severity,
    direction,
    sequence_number,
    source_location,
    destination_location,
    file_digest,
    user_agent,
    sender,
    subject,
    device_name,
    threat_category,
    rule_uuid,
    container_id,
    pod_namespace,
    pod_name,
    high_res_time,
}

impl Layout {
    /// The highest column index the layout reads.
    const fn last_index(&self) -> u16 {
        let all = self.indices();
        let mut last = 0;
        let mut i = 0;
        while i < all.len() {
            if all[i] != NONE && all[i] > last {
                last = all[i];
            }
            i += 1;
        }
        last
    }
}

/// How many leading columns the classic THREAT and TRAFFIC parsers read:
/// the splitter may leave the ones after them unsplit.
pub(crate) const CLASSIC_READ: usize = {
    let (t, r) = (THREAT.last_index(), TRAFFIC.last_index());
    (if t > r { t } else { r }) as usize + 1
};

/// THREAT, classic layout (42 columns in 6.x, 123 in 11.1).
pub(crate) const THREAT: Layout = Layout {
    // Ends at Content Type: the 6.x / 7.0 layout.
    min_columns: 42,
    receive_time: 1,
    serial: 2,
    subtype: 4,
    generated_time: 6,
    source_ip: 7,
    destination_ip: 8,
    nat_source_ip: 9,
    nat_destination_ip: 10,
    rule: 11,
    source_user: 12,
    destination_user: 13,
    application: 14,
    virtual_system: 15,
    source_zone: 16,
    destination_zone: 17,
    inbound_interface: 18,
    outbound_interface: 19,
    session_id: 22,
    repeat_count: 23,
    source_port: 24,
    destination_port: 25,
    nat_source_port: 26,
    nat_destination_port: 27,
    protocol: 29,
    action: 30,
    misc: 31,
    threat_id: 32,
    category: 33,
    severity: 34,
    direction: 35,
    sequence_number: 36,
    source_location: 38,
    destination_location: 39,
    file_digest: 43,
    user_agent: 46,
    sender: 50,
    subject: 51,
    device_name: 59,
    threat_category: 69,
    rule_uuid: 76,
    container_id: 96,
    pod_namespace: 97,
    pod_name: 98,
    high_res_time: 107,
};

/// TRAFFIC, classic layout (43 columns in 6.x, 110+ in 11.x).
pub(crate) const TRAFFIC: Layout = Layout {
    // Ends at Destination Location: the oldest real lines (6.x era).
    min_columns: 43,
    misc: NONE,
    threat_id: NONE,
    // Traffic's "Category" (idx 37) is the URL category of the session: not
    // a threat category.
    category: NONE,
    severity: NONE,
    direction: NONE,
    sequence_number: 39,
    source_location: 41,
    destination_location: 42,
    file_digest: NONE,
    user_agent: NONE,
    sender: NONE,
    subject: NONE,
    device_name: 52,
    threat_category: NONE,
    rule_uuid: 65,
    container_id: 92,
    pod_namespace: 93,
    pod_name: 94,
    // After Source/Destination Dynamic Address Group (99, 100) and Session
    // Owner (101), checked against a real 11.x line.
    high_res_time: 102,
    ..THREAT
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_parsers_read_only_the_columns_kept() {
        // High Resolution Timestamp, the last field of an 11.x THREAT line
        // that an event uses.
        assert_eq!(CLASSIC_READ, 108);
        assert!(usize::from(TRAFFIC.last_index()) < CLASSIC_READ);
    }
}
