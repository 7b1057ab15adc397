//! `shm-ipc`: list, inspect, remove and clean up shm-ipc shared-memory segments.
//!
//! Run `shm-ipc --help` for the commands. Exit codes: 0 success, 1 error, 2 usage error.

mod cli;

fn main() {
    let code = cli::run(
        std::env::args_os().skip(1),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::exit(code);
}
