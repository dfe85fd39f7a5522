import Foundation
import Synchronization

/// Phase timers for the benchmarks' profiles (docs/PERFORMANCE.md): a kernel marks the end of each
/// phase, and when `FAULTLINE_PHASE_TIMES` is set in the environment the last run's phases are kept
/// for `PhaseClock.last` (the benchmark prints them). Unset, `mark` and `publish` do nothing but read
/// one flag, so kernels keep their marks in production builds.
public struct PhaseClock {
    /// Whether phase times are recorded (`FAULTLINE_PHASE_TIMES` set, to anything, at start-up).
    public static let enabled = ProcessInfo.processInfo.environment["FAULTLINE_PHASE_TIMES"] != nil
    private static let store = Mutex<[(phase: String, seconds: Double)]>([])

    private var phases: [(phase: String, seconds: Double)] = []
    private var start: Double

    /// Starts the clock (a no-op unless `FAULTLINE_PHASE_TIMES` is set).
    public init() { start = Self.enabled ? Self.now() : 0 }

    /// Ends the current phase under `name` (seconds since the previous mark or `init`).
    public mutating func mark(_ name: String) {
        guard Self.enabled else { return }
        let t = Self.now()
        phases.append((name, t - start))
        start = t
    }

    /// Keeps this run's phases as `PhaseClock.last`.
    public func publish() {
        guard Self.enabled else { return }
        Self.store.withLock { $0 = phases }
    }

    /// The phases of the last published run (empty unless enabled).
    public static var last: [(phase: String, seconds: Double)] { store.withLock { $0 } }

    private static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + 1e-9 * Double(t.tv_nsec)
    }
}
