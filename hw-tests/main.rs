//! `cargo test --test hw`: the hardware-in-the-loop suite on a real modem.
//! Without `SMSBRIDGE_HW_PORT` it prints one `skipping:` line and succeeds; see
//! hw-tests/README.md for the variables. The report (markdown) goes to stdout
//! and, with `SMSBRIDGE_HW_REPORT=FILE`, to that file.

#[path = "suite.rs"]
mod suite;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_smsbridge"));
    let cfg = match suite::Config::from_env(bin, suite::work_dir("hw")) {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!(
                "skipping: SMSBRIDGE_HW_PORT is not set (hardware-in-the-loop suite, see hw-tests/README.md)"
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("hw-tests: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!("hw-tests: work directory {}", cfg.work_dir.display());
    let report = suite::run(&cfg);
    println!("{}", report.markdown());
    let out = std::env::var_os("SMSBRIDGE_HW_REPORT").map(PathBuf::from);
    if let Err(e) = suite::save(&report, out.as_deref()) {
        eprintln!("hw-tests: cannot write the report: {e}");
    }
    if report.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
