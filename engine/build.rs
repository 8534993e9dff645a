//! The store's migrations are embedded by `sqlx::migrate!`, which cargo
//! does not know reads them: a changed or added migration must rebuild
//! the crate, not leave the old SQL in the binary.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
