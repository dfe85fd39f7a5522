import Foundation

/// Runs the `faultline` executable built beside the test bundle and captures its output.
public enum CLIRunner {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        /// True when the process was ended by a signal (a trap, an abort, a kill): `status` is then the signal.
        public var signaled = false
        /// True when the process ran past the `timeout` of `run` and was killed.
        public var timedOut = false
    }

    /// The built `faultline` binary (the test target depends on it, so it sits in the same build folder).
    public static var executable: URL {
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [here, here.deletingLastPathComponent()] {
            let url = candidate.appendingPathComponent("faultline")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return here.appendingPathComponent("faultline")
    }

    /// Runs `faultline arguments…` with `environment` changes applied (nil removes a variable). With a
    /// `timeout` (seconds), a process still running then is killed (SIGKILL) and reported as `timedOut`.
    /// With `memoryLimit` (bytes), the process runs under that address-space limit (`prlimit --as`, where
    /// util-linux has it), so an allocation sized by hostile input fails there instead of swapping.
    /// One `faultline` child at a time, from spawn to exit: swift-corelibs-foundation's Process.run crashed
    /// (a memcpy inside run(), simd suites, 2026-12-02, twice) while dozens of Process objects were alive in
    /// parallel tests, also with only the spawn serialised. On 2 cores this costs little: the in-process
    /// tests still run beside the one child.
    private static let gate = DispatchSemaphore(value: 1)

    /// `launcher`: a command that runs the executable (e.g. `["timeout", "60", "mpirun", "-np", "2"]`): the
    /// child is then `launcher… faultline arguments…` (and no memory limit applies).
    public static func run(_ arguments: [String], environment changes: [String: String?] = [:], timeout: Double? = nil,
                           memoryLimit: Int? = nil, launcher: [String] = []) throws -> Result {
        gate.wait()
        defer { gate.signal() }
        let process = Process()
        let prlimit = "/usr/bin/prlimit"
        // Sanitizer builds reserve terabytes of shadow address space: scripts/sanitize turns the cap off.
        let capped = ProcessInfo.processInfo.environment["FAULTLINE_NO_MEMORY_LIMIT"] == nil
        if let tool = launcher.first {
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = Array(launcher.dropFirst()) + [executable.path] + arguments
        } else if let memoryLimit, capped, FileManager.default.isExecutableFile(atPath: prlimit) {
            process.executableURL = URL(fileURLWithPath: prlimit)
            process.arguments = ["--as=\(memoryLimit)", "--", executable.path] + arguments
        } else {
            process.executableURL = executable
            process.arguments = arguments
        }
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in changes { environment[key] = value }
        process.environment = environment
        // stderr goes to a file and stdout to a pipe, so neither can fill up and block the child.
        let errURL = TestScratch.root.appendingPathComponent("faultline-stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errURL) }
        let out = Pipe()
        let errHandle = try FileHandle(forWritingTo: errURL)
        // Closed here, not when Foundation lets go of the Process: left to that, hundreds of pipes and
        // deleted stderr files stayed open during the parameterised CLI suites (1,549 descriptors seen),
        // and Process.run() then crashed copying /proc/self/fd (issue 22, the flaky memcpy crash).
        defer {
            try? errHandle.close()
            try? out.fileHandleForReading.close()
        }
        process.standardOutput = out
        process.standardError = errHandle
        try process.run()
        let killed = Flag()
        if let timeout {
            let pid = process.processIdentifier
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
                guard process.isRunning else { return }
                killed.set()
                kill(pid, SIGKILL)
            }
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errData = readAll(errURL.path)
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self), signaled: process.terminationReason == .uncaughtSignal,
                      timedOut: killed.value)
    }
}

/// The bytes of a file through POSIX reads (Foundation's file reading leaks under LeakSanitizer).
private func readAll(_ path: String) -> Data {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return Data() }
    defer { close(fd) }
    var data = Data(), buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { break }
        data.append(contentsOf: buffer[0..<n])
    }
    return data
}

/// A flag set from another thread.
private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var isSet = false
    func set() { lock.lock(); isSet = true; lock.unlock() }
    var value: Bool { lock.lock(); defer { lock.unlock() }; return isSet }
}
