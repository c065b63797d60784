use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match doorward::cli::run(std::env::args_os()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One clear line, never a panic or a backtrace.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
