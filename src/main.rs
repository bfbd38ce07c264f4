fn main() -> std::process::ExitCode {
    radpipe::main()
}
