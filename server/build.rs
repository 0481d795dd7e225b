// The page (embedded by rust-embed) is compiled into the binary: rebuild
// when it changes, including when files are added.
fn main() {
    println!("cargo:rerun-if-changed=../web");
}
