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
            10 classes, then N scores, N 2,000…32,000), mmd (W6's shape: MMD² test of n + n rows × 64 features, \
            100 permutations, n 500…4,000; expected quadratic in n), graph (the graph executor's forward pass of a \
            small CNN, batch 32…2,048). Each point is the median of --reps runs after a warm-up; the table's \
            exponent is the log-log slope between the two largest sizes. Writes OUT/scaling.json and \
            OUT/<workload>.svg.
            """)

    @OptionGroup var options: BenchOptions

    @Option(help: "Comma-separated workloads: forward, mahalanobis, mmd, graph.")
    var workloads = "forward,mahalanobis,mmd,graph"

    @Option(help: "Output folder for scaling.json and the SVG plots.")
    var out = "faultline-scaling"

    @Option(help: "Comma-separated thread counts.")
    var threads = "1,2"

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
                (name: "\(count) thread\(count == 1 ? "" : "s")",
                 points: points.filter { $0.workload == workload.name && $0.threads == count }.map { (size: Double($0.size), seconds: $0.median_s) })
            }
            let svg = ScalingFigure.svg(title: workload.title, sizeLabel: workload.sizeLabel, series: series)
            try svg.write(toFile: out + "/\(workload.name).svg", atomically: true, encoding: .utf8)
        }
        let output = Output(system: system, points: points)
        try JSONOutput.string(output).write(toFile: out + "/scaling.json", atomically: true, encoding: .utf8)
        if options.json {
            print(try JSONOutput.string(output))
            return
        }
        var rows: [[String]] = []
        for workload in Self.catalogue where chosen.contains(workload.name) {
            for size in workload.sizes {
                let at = points.filter { $0.workload == workload.name && $0.size == size }
                var row = [workload.name, String(size)] + at.map { String(format: "%.4f", $0.median_s) }
                if let one = at.first(where: { $0.threads == 1 }), let two = at.first(where: { $0.threads == 2 }) {
                    row.append(String(format: "%.2f", one.median_s / two.median_s))
                }
                rows.append(row)
            }
            let largest = workload.sizes.suffix(2)
            if largest.count == 2, let t = counts.first {
                let times = largest.map { s in points.first { $0.workload == workload.name && $0.size == s && $0.threads == t }!.median_s }
                let exponent = log(times[1] / times[0]) / log(Double(largest.last!) / Double(largest.first!))
                rows.append([workload.name, "exponent", String(format: "%.2f (at %d thread%@)", exponent, t, t == 1 ? "" : "s")])
            }
        }
        let header = ["workload", "size"] + counts.map { "\($0) thr. s" } + (counts.contains(1) && counts.contains(2) ? ["speed-up 1→2"] : [])
        print(TextTable.grid(header: header, rows: rows.map { $0 + Array(repeating: "", count: max(0, header.count - $0.count)) }))
        print("wrote \(out)/scaling.json and \(out)/<workload>.svg")
    }

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
        Workload(name: "mmd", title: "MMD² permutation test, 64 features, 100 permutations", sizeLabel: "rows per sample",
                 sizes: [500, 1000, 2000, 4000]) { n in
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
