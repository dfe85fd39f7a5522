@_spi(Fuzzing) import FaultlineCLI

/// libFuzzer entry point for the option-value checkers the commands' `validate()` use: the input is
/// one option value (UTF-8, lossy) and goes through every checker — number lists under each interval,
/// boxes, image shapes against several feature counts, `--shifted` items, model specs (planned, never
/// built), real and count range checks. Each must return a value or throw: never trap, hang or
/// allocate by the value.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size <= 1024 else { return 0 }
    OptionFuzzing.checkValue(String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self))
    return 0
}
