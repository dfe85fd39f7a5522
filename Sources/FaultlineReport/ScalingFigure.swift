import Foundation

/// Time against problem size on log-log axes, for the benchmark harness's scaling sweeps
/// (`faultline bench scaling`): x is log₂ of the size, y log₁₀ of the seconds, one line per series
/// (e.g. per thread count), so a kernel of cost O(nᵏ) draws a line of slope k·log₁₀2.
public enum ScalingFigure {
    /// The SVG document. Sizes and times must be positive; other points are left out.
    public static func svg(title: String, sizeLabel: String, series: [(name: String, points: [(size: Double, seconds: Double)])]) -> String {
        let lines = series.map { entry in
            SVGPlot.Series(name: entry.name, points: entry.points.filter { $0.size > 0 && $0.seconds > 0 }
                .map { (x: log2($0.size), y: log10($0.seconds)) })
        }
        return SVGPlot(title: title, xLabel: "log₂ \(sizeLabel)", yLabel: "log₁₀ seconds", series: lines).render()
    }
}
