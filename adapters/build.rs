// `sqlx::migrate!` embeds the workspace's migrations at compile time; without this a new or
// edited migration would not reach the binary until something else forced a rebuild.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
