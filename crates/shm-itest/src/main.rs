//! `shm-itest`: the one child binary of shm-ipc's multi-process tests. Started by a test in a
//! role (`SHM_IPC_ROLE=lock.hold`, see `shm_process`), it runs that role's function from
//! `shm_itest::roles` and exits with its code. Not meant to be run by hand.

fn main() {
    shm_itest::roles::all().run();
    println!("top-level run");
}
