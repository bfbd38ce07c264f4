fn main() -> std::process::ExitCode {
    radpipe::cli::main()
}
