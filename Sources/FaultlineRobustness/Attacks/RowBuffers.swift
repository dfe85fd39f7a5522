import FaultlineLinalg

/// The per-row storage of one batch of an early-stopping attack, and the one compaction routine that
/// moves finished rows behind the live ones.
///
/// Every per-row buffer is allocated **through** this object (`floats(width:)`, `column(repeating:)`,
/// `column(width:repeating:)`), which registers it; `compact` and `swapRows` then move every registered
/// buffer together, so a new attack cannot forget one. `origin[k]` is the input row held in slot k.
/// Capacity is fixed at creation; buffers are reused across batches. Not for concurrent use.
public final class BatchRows {
    /// The most rows a batch holds.
    public let capacity: Int
    /// Rows loaded in the current batch (slots 0..<count).
    public private(set) var count = 0
    /// origin[k]: the index in the attack's input of the sample held in slot k.
    public let origin: RowColumn<Int>
    private var members: [any RowSwappable] = []

    /// Storage for batches of up to `capacity` rows.
    public init(capacity: Int) {
        self.capacity = capacity
        origin = RowColumn(capacity: capacity, width: 1, repeating: 0)
        members.append(origin)
    }

    /// A registered buffer of `width` floats per row (64-byte aligned, uninitialised).
    public func floats(width: Int) -> AlignedBuffer<Float> {
        let buffer = AlignedBuffer<Float>(uninitializedCount: capacity * width)
        members.append(RowFloats(buffer: buffer, width: width))
        return buffer
    }

    /// A registered column of `width` values per row, every value `value`.
    public func column<Element>(width: Int = 1, repeating value: Element) -> RowColumn<Element> {
        let column = RowColumn(capacity: capacity, width: width, repeating: value)
        members.append(column)
        return column
    }

    /// Starts a batch of the input rows `indices` (at most `capacity`), slot k holding indices[k].
    public func load(_ indices: [Int]) {
        precondition(indices.count <= capacity, "batch of \(indices.count) rows exceeds the capacity \(capacity)")
        count = indices.count
        for (k, i) in indices.enumerated() { origin[k] = i }
    }

    /// The input indices of the loaded slots, in slot order.
    public var rows: [Int] { (0..<count).map { origin[$0] } }

    /// Exchanges slots a and b in every registered buffer.
    public func swapRows(_ a: Int, _ b: Int) {
        guard a != b else { return }
        for member in members { member.swapRows(a, b) }
    }

    /// Early-stopping compaction of the first `live` slots. Scans slot k = 0, 1, …: `finished(k)` says
    /// whether the sample now in slot k is done (it may record that sample's outcome in slot k); a done
    /// slot is exchanged with the last live slot (every registered buffer, and the rows of `alongside`,
    /// e.g. the logits being scanned) and the live count drops, and slot k is examined again (it now
    /// holds an unexamined live sample). Returns the new live count and whether any slot moved.
    /// Cost: O(live) calls plus one exchange per finished row. With no finished row it changes nothing.
    @discardableResult
    public func compact(live: Int, alongside: MatrixPointer<Float>? = nil, finished: (Int) -> Bool) -> (live: Int, moved: Bool) {
        var live = live, k = 0, moved = false
        while k < live {
            if !finished(k) { k += 1; continue }
            live -= 1
            if k != live {
                moved = true
                swapRows(k, live)
                alongside?.swapRowsForCompaction(k, live)
            }
        }
        return (live, moved)
    }
}

/// A buffer whose rows the compaction can exchange.
protocol RowSwappable: AnyObject {
    func swapRows(_ a: Int, _ b: Int)
}

/// `width` floats per row in an aligned buffer.
private final class RowFloats: RowSwappable {
    let buffer: AlignedBuffer<Float>, width: Int
    init(buffer: AlignedBuffer<Float>, width: Int) { (self.buffer, self.width) = (buffer, width) }
    func swapRows(_ a: Int, _ b: Int) { buffer.swapRows(a, b, width: width) }
}

/// `width` values of any type per row (labels, counters, random streams, optional steps).
public final class RowColumn<Element>: RowSwappable {
    /// Element k·width + j is value j of row k.
    public let pointer: UnsafeMutablePointer<Element>
    /// Values per row.
    public let width: Int
    private let count: Int

    init(capacity: Int, width: Int, repeating value: Element) {
        count = max(capacity * width, 1)
        self.width = width
        pointer = .allocate(capacity: count)
        pointer.initialize(repeating: value, count: count)
    }

    deinit {
        pointer.deinitialize(count: count)
        pointer.deallocate()
    }

    /// Element k (for width 1, row k).
    public subscript(k: Int) -> Element {
        get { pointer[k] }
        set { pointer[k] = newValue }
    }

    /// Exchanges the values of rows `a` and `b`.
    public func swapRows(_ a: Int, _ b: Int) {
        guard a != b else { return }
        for j in 0..<width { swap(&pointer[a * width + j], &pointer[b * width + j]) }
    }
}

/// Row operations on the flat buffers of the attacks' batch states (rows of `width` floats).
extension AlignedBuffer where Element == Float {
    /// Exchanges rows a and b (batch compaction: finished samples move behind the live ones).
    func swapRows(_ a: Int, _ b: Int, width: Int) {
        guard a != b else { return }
        let p = pointer + a * width, q = pointer + b * width
        for j in 0..<width { swap(&p[j], &q[j]) }
    }

    /// Copies row k into row i of `matrix`.
    func copyRow(_ k: Int, width: Int, into matrix: inout Matrix<Float>, row i: Int) {
        matrix.withUnsafeMutableBufferPointer { m in (m.baseAddress! + i * width).update(from: pointer + k * width, count: width) }
    }
}

extension MatrixPointer where Scalar == Float {
    /// Swaps two rows of logits in place, keeping them aligned with a compacted batch.
    func swapRowsForCompaction(_ k: Int, _ l: Int) {
        guard k != l else { return }
        let p = UnsafeMutablePointer(mutating: base)
        for j in 0..<columns { swap(&p[k * rowStride + j], &p[l * rowStride + j]) }
    }
}
