/// A heap buffer of `count` elements aligned to 64 bytes (a cache line, an AVX-512 vector), freed on
/// deinit. The storage behind `Matrix` and the packing buffers of the SIMD kernels.
///
/// Not thread-safe by itself: `Matrix` gives it value semantics with copy-on-write, and kernels only
/// write to buffers they own.
public final class AlignedBuffer<Element>: @unchecked Sendable {
    /// 64 bytes.
    public static var alignment: Int { 64 }
    /// The first element. Valid for `count` elements (and never null, even when `count == 0`).
    public let pointer: UnsafeMutablePointer<Element>
    /// The number of elements.
    public let count: Int
    /// Frees memory this buffer does not own (a file mapping); nil for memory it allocated.
    private let release: (@Sendable () -> Void)?

    /// Allocates uninitialised memory for `count` trivial elements.
    public init(uninitializedCount count: Int) {
        precondition(count >= 0, "AlignedBuffer: negative count \(count)")
        precondition(_isPOD(Element.self), "AlignedBuffer holds trivial element types only")
        let bytes = max(count, 1) * MemoryLayout<Element>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: Self.alignment)
        pointer = raw.bindMemory(to: Element.self, capacity: max(count, 1))
        self.count = count
        release = nil
    }

    /// Adopts memory owned elsewhere (e.g. a private file mapping), freed by `release` on deinit.
    /// The memory must be 64-byte aligned, writable, and valid for `count` elements until `release`.
    public init(adopting pointer: UnsafeMutablePointer<Element>, count: Int, release: @escaping @Sendable () -> Void) {
        precondition(UInt(bitPattern: pointer) % UInt(Self.alignment) == 0, "AlignedBuffer: adopted memory is not 64-byte aligned")
        precondition(_isPOD(Element.self), "AlignedBuffer holds trivial element types only")
        self.pointer = pointer
        self.count = count
        self.release = release
    }

    /// Allocates and fills with `value`.
    public convenience init(repeating value: Element, count: Int) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: value, count: count)
    }

    deinit {
        if let release { release() } else { UnsafeMutableRawPointer(pointer).deallocate() }
    }

    /// The elements as a buffer pointer.
    public var buffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}
