//! `squall-lossyfs`: serves one node's lossy mount for the harness (see `lossyfs::serve`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match lossyfs::serve::ServeArgs::parse(&args) {
        Ok(a) => ExitCode::from(lossyfs::serve::serve(a) as u8),
        Err(e) => {
            eprintln!("squall-lossyfs: {e}");
            ExitCode::from(254)
        }
    }
}
