#![forbid(unsafe_code)]
//! `msh`: the client; everything is in [`msh_client::msh`].

fn main() {
    // Exit without dropping the runtime or joining threads: a stdin read parked in its thread
    // would otherwise keep the process alive until the user pressed a key.
    std::process::exit(msh_client::msh::main());
}
