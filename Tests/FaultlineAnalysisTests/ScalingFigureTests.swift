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
