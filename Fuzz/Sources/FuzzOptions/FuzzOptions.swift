@_spi(Fuzzing) import FaultlineCLI

/// libFuzzer entry point for the command line as a whole: the input is split at NUL bytes into an
/// argument vector (after `faultline`) and parsed with every command's `validate()` — the option
/// checks that run before any file is read. Commands are never run. Every outcome is a parsed command
/// or a thrown error (usage, validation, help): never a trap, a hang or an allocation sized by an
/// option value. ArgumentParser's parse costs ≈ 2.5 ms under ASan (≈ 400 inputs/s); the option-value
/// checkers alone are fuzzed much faster by FuzzOptionValues.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size <= 4096 else { return 0 }
    let bytes = UnsafeBufferPointer(start: data, count: size)
    OptionFuzzing.parse(bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) })
    return 0
}
