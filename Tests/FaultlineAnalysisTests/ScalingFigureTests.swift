import FaultlineReport
import Foundation
import Testing
import _TestSupport

/// `ScalingFigure` (the plots of `faultline bench scaling`): log₂ size against log₁₀ seconds, every
/// mark inside its frame, non-positive points left out.
@Suite("scaling figure")
struct ScalingFigureTests {
    @Test func pointsAreLogLogAndInsideTheFrame() throws {
        let series = [(name: "1 thread", points: [(size: 64.0, seconds: 0.001), (size: 256.0, seconds: 0.004), (size: 4096.0, seconds: 0.1)]),
                      (name: "2 threads", points: [(size: 64.0, seconds: 0.0006), (size: 0.0, seconds: 1.0), (size: 4096.0, seconds: -1.0),
                                                   (size: 4096.0, seconds: 0.06)])]
        let svg = ScalingFigure.svg(title: "t", sizeLabel: "batch", series: series)
        #expect(svg.contains("log₂ batch") && svg.contains("log₁₀ seconds") && svg.contains("2 threads"))
        #expect(SVGRenderCheck.violations(svg).isEmpty, "\(SVGRenderCheck.violations(svg))")
        let lines = svg.components(separatedBy: "<polyline").dropFirst()
        let vertices = lines.map { $0.components(separatedBy: "points=\"")[1].prefix { $0 != "\"" }.split(separator: " ").count }
        #expect(vertices == [3, 2], "the two bad points of the second series are left out")
    }
}

/// The peers' curves beside ours: `ScalingPeerFile` (the JSON of Benchmarks/peers/scaling_peers.py,
/// written here by hand so the test needs no Python) and `ScalingFigure.svg(…, peers:)`.
@Suite("scaling figure with peers")
struct ScalingPeerFigureTests {
    static let json = """
        {"generator": "Benchmarks/peers/scaling_peers.py", "date": "2026-12-03T01:00:00Z", "cpu": "test CPU",
         "versions": {"torch": "2.15.0", "numpy": "2.4.6"},
         "series": [
          {"workload": "forward", "peer": "torch 2.15.0", "threads": 1,
           "points": [{"size": 64, "median_s": 0.004, "times_s": [0.004, 0.005, 0.003]}, {"size": 4096, "median_s": 0.3}]},
          {"workload": "forward", "peer": "torch 2.15.0", "threads": 2,
           "points": [{"size": 64, "median_s": 0.003}, {"size": 256, "median_s": 0.0}, {"size": 4096, "median_s": 12.0}]},
          {"workload": "mmd", "peer": "numpy 2.4.6 f32", "threads": 1, "points": []}
         ]}
        """

    @Test func decodesTheGeneratorsJSONAndRoundTrips() throws {
        let file = try ScalingPeerFile.decode(Data(Self.json.utf8), path: "peers.json")
        #expect(file.series.count == 3 && file.cpu == "test CPU" && file.versions?["torch"] == "2.15.0")
        #expect(file.series(of: "forward").map(\.name) == ["torch 2.15.0, 1 thr.", "torch 2.15.0, 2 thr."])
        #expect(file.series(of: "graph").isEmpty)
        #expect(file.series[0].points[0].times_s == [0.004, 0.005, 0.003] && file.series[0].points[1].times_s == nil)
        let curves = file.curves(of: "forward")
        #expect(curves.map { $0.points.map(\.size) } == [[64, 4096], [64, 256, 4096]])
        let again = try ScalingPeerFile.decode(JSONEncoder().encode(file), path: "again.json")
        #expect(again == file)
    }

    @Test func badFilesGiveTypedErrorsNamingTheFile() throws {
        for (text, key) in [("{}", "series"), ("{\"series\": [{\"workload\": \"mmd\", \"peer\": \"p\", \"threads\": 1}]}", "points"),
                            ("not json", ""), ("", ""), ("{\"series\": [{\"workload\": 3}]}", "")] {
            do {
                _ = try ScalingPeerFile.decode(Data(text.utf8), path: "/tmp/p.json")
                Issue.record("\(text) decoded")
            } catch let error as ScalingPeerFile.LoadError {
                guard case let .malformed(path, reason) = error else { Issue.record("\(error)"); continue }
                #expect(path == "/tmp/p.json" && (key.isEmpty || reason.contains(key)), "\(reason)")
                #expect(error.description.contains("--peers") && error.description.contains("scaling_peers.py"))
            }
        }
        #expect(throws: ScalingPeerFile.LoadError.self) { try ScalingPeerFile.load(path: "/nonexistent/faultline-peers.json") }
    }

    @Test func peersAreDashedNamedAndInsideTheFrame() throws {
        let file = try ScalingPeerFile.decode(Data(Self.json.utf8), path: "peers.json")
        let ours = [(name: "faultline, 1 thr.", points: [(size: 64.0, seconds: 0.002), (size: 256.0, seconds: 0.006), (size: 4096.0, seconds: 0.1)]),
                    (name: "faultline, 2 thr.", points: [(size: 64.0, seconds: 0.0015), (size: 4096.0, seconds: 0.06)])]
        // Sizes 0…2 of the peer list, and peers far outside our range (12 s against our 0.1 s).
        for peerCount in 0...2 {
            let peers = Array(file.curves(of: "forward").prefix(peerCount))
            let svg = ScalingFigure.svg(title: "forward", sizeLabel: "batch", series: ours, peers: peers)
            #expect(SVGRenderCheck.violations(svg).isEmpty, "\(SVGRenderCheck.violations(svg))")
            let lines = svg.components(separatedBy: "<polyline").dropFirst().map { String($0.prefix { $0 != ">" }) }
            #expect(lines.count == 2 + peerCount)
            #expect(lines.prefix(2).allSatisfy { !$0.contains("stroke-dasharray") }, "ours solid")
            #expect(lines.dropFirst(2).allSatisfy { $0.contains("stroke-dasharray=\"6 4\"") }, "peers dashed")
            for peer in peers { #expect(svg.contains(peer.name)) }
            // The legend shows each peer's dash pattern, and every peer has its own colour.
            let legendLines = svg.components(separatedBy: "<line ").dropFirst().map { $0.prefix { $0 != ">" } }
            #expect(legendLines.filter { $0.contains("stroke-dasharray=\"6 4\"") }.count == peerCount)
            let colours = lines.map { $0.components(separatedBy: "stroke=\"")[1].prefix { $0 != "\"" } }
            #expect(Set(colours).count == colours.count)
        }
        // The peer's non-positive point (median 0) is left out: 2 vertices, not 3.
        let svg = ScalingFigure.svg(title: "f", sizeLabel: "batch", series: [], peers: file.curves(of: "forward"))
        let vertices = svg.components(separatedBy: "<polyline").dropFirst().map { $0.components(separatedBy: "points=\"")[1].prefix { $0 != "\"" }.split(separator: " ").count }
        #expect(vertices == [2, 2])
        #expect(SVGRenderCheck.violations(ScalingFigure.svg(title: "empty", sizeLabel: "n", series: [], peers: file.curves(of: "mmd"))).isEmpty)
    }
}
