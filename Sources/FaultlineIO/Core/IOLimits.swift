import Foundation

/// Limits on what the bytes of an untrusted file can make Faultline allocate. Every size a file
/// declares is checked against the file itself (e.g. a `.npy` shape against its data bytes) and, where
/// the file is compressed and the data cannot be checked before inflating it, against these limits.
public enum IOLimits {
    /// The most bytes one decompressed `.npz` member or gzip (IDX) stream may hold: half the physical
    /// memory, at most 16 GiB; `FAULTLINE_MAX_DECOMPRESSED_BYTES` overrides it. A member that declares
    /// more is refused before anything is allocated, a gzip stream that produces more is stopped there;
    /// both errors name the file and the limit.
    public static let decompressedBytes: Int = {
        if let raw = ProcessInfo.processInfo.environment["FAULTLINE_MAX_DECOMPRESSED_BYTES"], let value = Int(raw), value > 0 { return value }
        let half = Int(clamping: ProcessInfo.processInfo.physicalMemory / 2)
        return max(1 << 20, min(half, 1 << 34))
    }()
}
