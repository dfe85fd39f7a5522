import FaultlineIO

/// libFuzzer entry point: any input must either decode or throw an IOError — never trap, never
/// read out of bounds (AddressSanitizer checks the latter).
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    do { _ = try NPZ.decode(bytes, name: "fuzz") } catch is IOError {} catch { fatalError("unexpected error type: \(error)") }
    return 0
}
