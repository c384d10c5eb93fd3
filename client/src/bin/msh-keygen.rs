#![forbid(unsafe_code)]
//! `msh-keygen`: keys, certificates and known_hosts files; everything is in
//! [`msh_client::keygen`].

fn main() -> std::process::ExitCode {
    msh_client::keygen::main()
}
