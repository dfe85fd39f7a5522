import Foundation

/// Time against problem size on log-log axes, for the benchmark harness's scaling sweeps
/// (`faultline bench scaling`): x is log₂ of the size, y log₁₀ of the seconds, one line per series
/// (e.g. per thread count), so a kernel of cost O(nᵏ) draws a line of slope k·log₁₀2.
public enum ScalingFigure {
    /// The SVG document. Sizes and times must be positive; other points are left out.
    ///
    /// `series` are drawn solid (Faultline's curves); `peers` (e.g. "torch 2.15.0, 2 thr.") dashed, after
    /// them, each with its own colour and marker shape, and the legend names every curve and shows its
    /// dash pattern. Both lists may be empty (an empty frame).
    public static func svg(title: String, sizeLabel: String, series: [(name: String, points: [(size: Double, seconds: Double)])],
                           peers: [(name: String, points: [(size: Double, seconds: Double)])] = []) -> String {
        func curve(_ entry: (name: String, points: [(size: Double, seconds: Double)]), dashed: Bool) -> SVGPlot.Series {
            SVGPlot.Series(name: entry.name, points: entry.points.filter { $0.size > 0 && $0.seconds > 0 && $0.size.isFinite && $0.seconds.isFinite }
                .map { (x: log2($0.size), y: log10($0.seconds)) }, dashed: dashed)
        }
        let lines = series.map { curve($0, dashed: false) } + peers.map { curve($0, dashed: true) }
        // The y range is the data's own (log seconds are negative: SVGPlot's default range starts at 0).
        let ys = lines.flatMap(\.points).map(\.y)
        let yRange = ys.isEmpty ? nil : (ys.min()! - 0.1)...(ys.max()! + 0.1)
        var plot = SVGPlot(title: title, xLabel: "log₂ \(sizeLabel)", yLabel: "log₁₀ seconds", series: lines, yRange: yRange)
        if !peers.isEmpty { plot.width = 640; plot.legendWidth = 200 }
        return plot.render()
    }
}

/// The peers' timings beside `faultline bench scaling`'s, as written by
/// `Benchmarks/peers/scaling_peers.py` and read by `faultline bench scaling --peers FILE`: one series per
/// workload, peer (named with its version, e.g. "torch 2.15.0") and thread count, each a list of
/// (size, median seconds) points at the harness's sizes.
public struct ScalingPeerFile: Codable, Sendable, Equatable {
    /// One measured point: the problem size and the median of the timed runs (seconds).
    public struct Point: Codable, Sendable, Equatable {
        /// The problem size, in the workload's unit (batch, rows, features).
        public var size: Int
        /// Median seconds of the timed runs.
        public var median_s: Double
        /// Every timed run (seconds), when the generator wrote them.
        public var times_s: [Double]?

        /// A point of `size` with median `median_s` seconds.
        public init(size: Int, median_s: Double, times_s: [Double]? = nil) {
            self.size = size
            self.median_s = median_s
            self.times_s = times_s
        }
    }

    /// One peer's curve for one workload at one thread count.
    public struct Series: Codable, Sendable, Equatable {
        /// The harness's workload name (forward, mahalanobis, mahalanobis-d, mmd, graph).
        public var workload: String
        /// The peer and its version, e.g. "numpy 2.4.6 f32".
        public var peer: String
        /// Threads the peer ran with.
        public var threads: Int
        /// The measured points.
        public var points: [Point]

        /// A series of `peer` on `workload` at `threads` threads.
        public init(workload: String, peer: String, threads: Int, points: [Point]) {
            self.workload = workload
            self.peer = peer
            self.threads = threads
            self.points = points
        }

        /// The legend name: peer, version and thread count.
        public var name: String { "\(peer), \(threads) thr." }
    }

    /// The generating script.
    public var generator: String?
    /// When it ran (ISO 8601, UTC).
    public var date: String?
    /// The CPU it ran on.
    public var cpu: String?
    /// Versions of the peers and their BLAS, by package name.
    public var versions: [String: String]?
    /// Every series.
    public var series: [Series]

    /// A file of `series` (the other fields optional).
    public init(generator: String? = nil, date: String? = nil, cpu: String? = nil, versions: [String: String]? = nil, series: [Series]) {
        self.generator = generator
        self.date = date
        self.cpu = cpu
        self.versions = versions
        self.series = series
    }

    /// Why a peers file could not be read; names the file and what to do.
    public enum LoadError: Error, CustomStringConvertible, Equatable {
        /// The file could not be opened or read.
        case unreadable(path: String, reason: String)
        /// The file is not the JSON `scaling_peers.py` writes.
        case malformed(path: String, reason: String)

        /// The message, naming the file and the fix.
        public var description: String {
            switch self {
            case let .unreadable(path, reason):
                return "--peers: cannot read '\(path)' (\(reason)); write it with python3 Benchmarks/peers/scaling_peers.py \(path)"
            case let .malformed(path, reason):
                return "--peers: '\(path)' is not a scaling_peers.py JSON file (\(reason)); regenerate it with "
                    + "python3 Benchmarks/peers/scaling_peers.py \(path)"
            }
        }
    }

    /// Decodes the JSON text of `data` (`path` names it in errors). Throws `LoadError.malformed`.
    public static func decode(_ data: Data, path: String) throws -> ScalingPeerFile {
        do {
            return try JSONDecoder().decode(ScalingPeerFile.self, from: data)
        } catch let error as DecodingError {
            let reason: String
            switch error {
            case let .keyNotFound(key, _): reason = "missing key '\(key.stringValue)'"
            case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context):
                reason = context.debugDescription
            @unknown default: reason = "\(error)"
            }
            throw LoadError.malformed(path: path, reason: reason)
        } catch {
            throw LoadError.malformed(path: path, reason: "\(error)")
        }
    }

    /// Reads and decodes the file at `path`. Throws `LoadError`.
    public static func load(path: String) throws -> ScalingPeerFile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw LoadError.unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        return try decode(data, path: path)
    }

    /// The series of one workload, in file order.
    public func series(of workload: String) -> [Series] { series.filter { $0.workload == workload } }

    /// The curves of one workload for `ScalingFigure.svg(…, peers:)`: legend name and (size, seconds) points.
    public func curves(of workload: String) -> [(name: String, points: [(size: Double, seconds: Double)])] {
        series(of: workload).map { entry in
            (name: entry.name, points: entry.points.map { (size: Double($0.size), seconds: $0.median_s) })
        }
    }
}
