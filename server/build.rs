// The page (embedded by rust-embed) and the migrations (embedded by
// sqlx::migrate!) are compiled into the binary: rebuild when they change,
// including when files are added.
fn main() {
    println!("cargo:rerun-if-changed=../web");
    println!("cargo:rerun-if-changed=migrations");
}
