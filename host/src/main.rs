fn main() -> std::process::ExitCode {
    retort::cli::main()
}
