import ArgumentParser
import FaultlineLinalg
import FaultlineNN
import FaultlineReport
import FaultlineShift
import Foundation

/// `faultline bench scaling`: time against problem size and thread count (issue 21, item 5), on seeded
/// inputs of the standard workloads' shapes, written as a table, JSON and one log-log SVG per workload.
struct ScalingBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaling",
        abstract: "Time kernels against problem size at 1 and 2 threads; write a table, JSON and log-log SVG plots.",
        discussion: """
            Workloads (seeded inputs, no --data needed): forward (W2's shape: forward + input gradient of the \
            784-512-512-10 MLP, batch 64…4096), mahalanobis (W3's shape: Gaussian fit of N rows × 128 features, \
            10 classes, then N scores, N 2,000…32,000), mahalanobis-d (the same at 8,000 rows, d 32…512 \
            features), mmd (W6's shape: MMD² test of n + n rows × 64 features, 100 permutations, n 500…8,000; \
            expected quadratic in n), graph (the graph executor's forward pass of a small CNN, batch 32…2,048). \
            Each point is the median of --reps runs after a warm-up; the table's exponent is the log-log slope \
            between the two largest sizes. Writes OUT/scaling.json and OUT/<workload>.svg. With --peers FILE \
            (written by python3 Benchmarks/peers/scaling_peers.py FILE: torch, numpy and sklearn at the same \
            sizes), every plot draws the peers' curves dashed beside ours and the table gains peer columns.
            """)

    @OptionGroup var options: BenchOptions

    @Option(help: "Comma-separated workloads: forward, mahalanobis, mahalanobis-d, mmd, graph.")
    var workloads = "forward,mahalanobis,mahalanobis-d,mmd,graph"

    @Option(help: "Output folder for scaling.json and the SVG plots.")
    var out = "faultline-scaling"

    @Option(help: "Comma-separated thread counts.")
    var threads = "1,2"

    @Option(help: "JSON of the peers' timings (Benchmarks/peers/scaling_peers.py) to draw beside ours.")
    var peers: String?

    struct Point: Codable {
        var workload: String
        var size: Int
        var threads: Int
        var times_s: [Double]
        var median_s: Double
    }

    struct Output: Codable {
        var system: SystemReport
        var points: [Point]
        var peers: ScalingPeerFile?
    }

    struct Workload: Sendable {
        let name: String
        let title: String
        let sizeLabel: String
        let sizes: [Int]
        /// Prepares the inputs of one size and returns the timed body.
        let prepare: @Sendable (Int) throws -> () throws -> Void
    }

    func validate() throws {
        let known = Set(Self.catalogue.map(\.name))
        for name in workloads.split(separator: ",").map(String.init) where !known.contains(name) {
            throw ValidationError("--workloads: unknown workload '\(name)' (choose from \(Self.catalogue.map(\.name).joined(separator: ", ")))")
        }
        guard let counts = Optional(threads.split(separator: ",").compactMap { Int($0) }), !counts.isEmpty,
              counts.count == threads.split(separator: ",").count, counts.allSatisfy({ (1...256).contains($0) }) else {
            throw ValidationError("--threads: give comma-separated counts in 1…256, e.g. 1,2")
        }
    }

    func run() throws {
        let peerFile = try peers.map { try ScalingPeerFile.load(path: $0) }
        let system = SystemReport.current()
        if !options.json { print(system.headline) }
        let chosen = workloads.split(separator: ",").map(String.init)
        let counts = threads.split(separator: ",").compactMap { Int($0) }
        var points: [Point] = []
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        for workload in Self.catalogue where chosen.contains(workload.name) {
            for size in workload.sizes {
                let body = try workload.prepare(size)
                for count in counts {
                    var times: [Double] = []
                    try Linalg.withThreads(count) {
                        for round in 0...options.reps {
                            let t = try Timing.seconds(body)
                            if round > 0 { times.append(t) }
                        }
                    }
                    points.append(Point(workload: workload.name, size: size, threads: count, times_s: times, median_s: Timing.median(times)))
                }
            }
            let series = counts.map { count in
                (name: "faultline, \(count) thr.",
                 points: points.filter { $0.workload == workload.name && $0.threads == count }.map { (size: Double($0.size), seconds: $0.median_s) })
            }
            let svg = ScalingFigure.svg(title: workload.title, sizeLabel: workload.sizeLabel, series: series,
                                        peers: peerFile?.curves(of: workload.name) ?? [])
            try svg.write(toFile: out + "/\(workload.name).svg", atomically: true, encoding: .utf8)
        }
        let output = Output(system: system, points: points, peers: peerFile)
        try JSONOutput.string(output).write(toFile: out + "/scaling.json", atomically: true, encoding: .utf8)
        if options.json {
            print(try JSONOutput.string(output))
            return
        }
        print(Self.table(workloads: Self.catalogue.filter { chosen.contains($0.name) }, counts: counts, points: points, peers: peerFile))
        print("wrote \(out)/scaling.json and \(out)/<workload>.svg")
    }

    /// The text table: our medians per thread count, the 1→2 speed-up, and per peer (if any) its medians
    /// and the ratio peer seconds / ours at each thread count; an exponent row per
    /// workload (log-log slope between the two largest sizes at the first thread count, ours and the peers').
    static func table(workloads: [Workload], counts: [Int], points: [Point], peers: ScalingPeerFile?) -> String {
        var peerLabels: [String] = []  // each peer once, in file order
        for series in peers?.series ?? [] where !peerLabels.contains(series.peer) { peerLabels.append(series.peer) }
        let ourHeader = counts.map { "\($0) thr. s" } + (counts.contains(1) && counts.contains(2) ? ["speed-up 1→2"] : [])
        let peerHeader = peers == nil ? [] : ["peer"] + counts.map { "peer \($0) thr. s" } + counts.map { "peer/ours \($0) thr." }
        let header = ["workload", "size"] + ourHeader + peerHeader
        func slope(_ a: (size: Int, t: Double), _ b: (size: Int, t: Double)) -> String {
            String(format: "%.2f", log(b.t / a.t) / log(Double(b.size) / Double(a.size)))
        }
        var rows: [[String]] = []
        for workload in workloads {
            let mine = points.filter { $0.workload == workload.name }
            let theirs = peers?.series(of: workload.name) ?? []
            let labels = peerLabels.filter { label in theirs.contains { $0.peer == label } }
            for size in workload.sizes {
                let at = mine.filter { $0.size == size }
                func ours(_ t: Int) -> Double? { at.first { $0.threads == t }?.median_s }
                var row = [workload.name, String(size)] + counts.map { ours($0).map { String(format: "%.4f", $0) } ?? "" }
                if ourHeader.count > counts.count {
                    row.append(ours(1).flatMap { one in ours(2).map { String(format: "%.2f", one / $0) } } ?? "")
                }
                for (k, label) in (labels.isEmpty ? [nil] : labels.map { Optional($0) }).enumerated() {
                    var line = k == 0 ? row : ["", ""] + Array(repeating: "", count: ourHeader.count)
                    if peers != nil {
                        func peer(_ t: Int) -> Double? {
                            theirs.first { $0.peer == label && $0.threads == t }?.points.first { $0.size == size }?.median_s
                        }
                        line.append(label ?? "")
                        line += counts.map { peer($0).map { String(format: "%.4f", $0) } ?? "" }
                        line += counts.map { t in peer(t).flatMap { p in ours(t).map { String(format: "%.2f", p / $0) } } ?? "" }
                    }
                    rows.append(line)
                }
            }
            let largest = workload.sizes.suffix(2)
            if largest.count == 2, let t = counts.first {
                let pair = largest.compactMap { s in mine.first { $0.size == s && $0.threads == t }.map { (size: s, t: $0.median_s) } }
                var row = [workload.name, "exponent", pair.count == 2 ? slope(pair[0], pair[1]) + " (at \(t) thr.)" : ""]
                if peers != nil {
                    let notes = theirs.filter { $0.threads == t }.compactMap { series -> String? in
                        let p = largest.compactMap { s in series.points.first { $0.size == s }.map { (size: s, t: $0.median_s) } }
                        return p.count == 2 ? "\(series.peer) \(slope(p[0], p[1])) (\(series.threads) thr.)" : nil
                    }
                    row += Array(repeating: "", count: ourHeader.count - 1) + [notes.joined(separator: "; ")]
                }
                rows.append(row)
            }
        }
        return TextTable.grid(header: header, rows: rows.map { Array(($0 + Array(repeating: "", count: max(0, header.count - $0.count))).prefix(header.count)) })
    }

    /// Rows of the mahalanobis-d sweep (Benchmarks/peers/scaling_peers.py uses the same).
    static let mahalanobisDRows = 8000

    static let catalogue: [Workload] = [
        Workload(name: "forward", title: "Forward + input gradient, 784-512-512-10 MLP", sizeLabel: "batch", sizes: [64, 256, 1024, 4096]) { n in
            let model = try ModelSpec.build("linear:784-512,relu,linear:512-512,relu,linear:512-10", seed: 0)
            var rng = Philox(seed: 1)
            let x: Matrix<Float> = rng.matrix(rows: n, columns: 784, .uniform(0, 1))
            let labels = (0..<n).map { $0 % 10 }
            return { _ = try model.inputGradient(x, labels: labels, batchSize: n) }
        },
        Workload(name: "mahalanobis", title: "Gaussian fit + Mahalanobis scores, 128 features, 10 classes", sizeLabel: "rows",
                 sizes: [2000, 8000, 32000]) { n in
            var rng = Philox(seed: 2)
            let x: Matrix<Float> = rng.matrix(rows: n, columns: 128, .normal(mean: 0, sd: 1))
            let labels = (0..<n).map { $0 % 10 }
            return {
                var fit = GaussianFit(dimension: 128, classes: 10)
                try fit.update(x, labels: labels)
                _ = try MahalanobisDetector(fit).score(x)
            }
        },
        Workload(name: "mahalanobis-d", title: "Gaussian fit + Mahalanobis scores, 8,000 rows, 10 classes", sizeLabel: "features",
                 sizes: [32, 64, 128, 256, 512]) { d in
            var rng = Philox(seed: 2)
            let x: Matrix<Float> = rng.matrix(rows: mahalanobisDRows, columns: d, .normal(mean: 0, sd: 1))
            let labels = (0..<mahalanobisDRows).map { $0 % 10 }
            return {
                var fit = GaussianFit(dimension: d, classes: 10)
                try fit.update(x, labels: labels)
                _ = try MahalanobisDetector(fit).score(x)
            }
        },
        Workload(name: "mmd", title: "MMD² permutation test, 64 features, 100 permutations", sizeLabel: "rows per sample",
                 sizes: [500, 1000, 2000, 4000, 8000]) { n in
            var rng = Philox(seed: 3)
            let x: Matrix<Float> = rng.matrix(rows: n, columns: 64, .normal(mean: 0, sd: 1))
            let y: Matrix<Float> = rng.matrix(rows: n, columns: 64, .normal(mean: 0.05, sd: 1))
            return { _ = try MMDTest.run(x, y, count: 100, seed: 4) }
        },
        Workload(name: "graph", title: "Graph executor forward, CNN 3×16×16 → 10", sizeLabel: "batch", sizes: [32, 128, 512, 2048]) { n in
            let cnn = try ModelSpec.build("input:3x16x16,conv2d:3-16-3-1-1,relu,conv2d:16-16-3-2-1,relu,flatten,linear:1024-10", seed: 5)
            let graph = try GraphModel(sequential: cnn)
            var rng = Philox(seed: 6)
            let x: Matrix<Float> = rng.matrix(rows: n, columns: 768, .uniform(0, 1))
            return { _ = try graph.logits(x) }
        },
    ]
}
