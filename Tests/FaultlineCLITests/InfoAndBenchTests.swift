import Foundation
import Testing
import _TestSupport

@Suite("faultline info / bench gemm")
struct InfoAndBenchTests {
    struct InfoJSON: Decodable {
        var backend: String
        var blasLoaded: Bool
        var openblasCore: String
        var coretypeSource: String
        var simdThreads: Int
    }

    @Test func infoReportsBackendAndCore() throws {
        let r = try CLIRunner.run(["info", "--json"], environment: ["FAULTLINE_BACKEND": nil])
        #expect(r.status == 0, "\(r.stderr)")
        let info = try JSONDecoder().decode(InfoJSON.self, from: Data(r.stdout.utf8))
        #expect(info.blasLoaded)
        #expect(info.backend == "blas")
        #expect(info.openblasCore != "-" && info.openblasCore != "Prescott")
        #expect(info.simdThreads >= 1)
        let table = try CLIRunner.run(["info"])
        #expect(table.stdout.contains("OpenBLAS core"))
    }

    /// `--version` prints the release and exits 0; a negative box parses as a value (`--box -1,1`), so the
    /// command gets as far as its model file; an unknown option is a usage error, exit 2.
    @Test func versionNegativeBoxAndUsageErrors() throws {
        let version = try CLIRunner.run(["--version"])
        #expect(version.status == 0 && version.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3, "\(version.stdout)")
        for command in ["attack", "certify", "report"] {
            let data = command == "report" ? ["--train-x", "a.npy", "--train-y", "b.npy", "--test-x", "a.npy", "--test-y", "b.npy"] : ["--x", "a.npy", "--y", "b.npy"]
            let r = try CLIRunner.run([command, "--model", "/nonexistent/m.safetensors", "--box", "-1,1"] + data)
            #expect(r.status == 2 && r.stderr.contains("--model") && r.stderr.contains("m.safetensors") && !r.stderr.contains("--box"), "\(command): \(r.stderr)")
        }
        let both = try CLIRunner.run(["attack", "--model", "m.safetensors", "--weights", "m.safetensors", "--x", "a.npy", "--y", "b.npy"])
        #expect(both.status == 2 && both.stderr.contains("--model FILE"), "\(both.stderr)")
        let unknown = try CLIRunner.run(["attack", "--no-such-option"])
        #expect(unknown.status == 2)
    }

    /// A missing BLAS library: everything runs on the simd backend and the notice appears exactly once.
    @Test func missingBlasFallsBackToSimdAndSaysSoOnce() throws {
        let r = try CLIRunner.run(["bench", "gemm", "--size", "96", "--reps", "2", "--json"],
                                  environment: ["FAULTLINE_BLAS": "/nonexistent/libmissing.so", "FAULTLINE_BACKEND": nil])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.components(separatedBy: "BLAS unavailable").count - 1 == 1, "stderr: \(r.stderr)")
        struct Report: Decodable {
            struct System: Decodable { var backend: String; var blasLoaded: Bool }
            struct Row: Decodable { var peer: String; var key: String }
            var system: System
            var rows: [Row]
        }
        let report = try JSONDecoder().decode(Report.self, from: Data(r.stdout.utf8))
        #expect(report.system.backend == "simd" && !report.system.blasLoaded)
        #expect(report.rows.count == 1 && report.rows[0].peer.contains("simd"))
        // The result is still right: the key carries the error against a float64 product.
        let error = Double(report.rows[0].key.replacingOccurrences(of: "rel.err ", with: "")) ?? .infinity
        #expect(error < 1e-5)
    }

    @Test func benchGemmPrintsFLROWLinesForThePeerRunner() throws {
        let r = try CLIRunner.run(["bench", "gemm", "--size", "128", "--reps", "2", "--flrow", "--compare-cores", "none"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = r.stdout.split(separator: "\n").filter { $0.hasPrefix("FLROW ") }
        #expect(rows.count == 3)  // blas library, raw shim, simd
        for row in rows {
            let object = try JSONSerialization.jsonObject(with: Data(row.dropFirst(6).utf8)) as? [String: Any]
            #expect(object?["workload"] as? String == "W1 gemm")
            #expect((object?["times_s"] as? [Double])?.count == 2)
        }
    }

    @Test func badOptionsExitWithUsageError() throws {
        let r = try CLIRunner.run(["bench", "gemm", "--size", "0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--size"))
    }

    /// With --json, a failure is one JSON object on stderr (command, message, exit code 2) — for input
    /// errors and for usage errors alike; without it, one line of text. stdout stays empty either way.
    @Test func jsonErrorsAreJSONOnStderr() throws {
        struct Failure: Decodable { struct Body: Decodable { var command: String; var message: String; var exitCode: Int }; var error: Body }
        let missing = "/nonexistent/logits.npy"
        for (arguments, mention) in [(["calibrate", "--logits", missing, "--labels", missing, "--json"], "--logits"),
                                     (["calibrate", "--logits", missing, "--json", "--bins", "0", "--labels", missing], "--bins"),
                                     (["calibrate", "--json", "--bogus-flag", "--logits", missing, "--labels", missing], "--bogus-flag")] {
            let r = try CLIRunner.run(arguments)
            #expect(r.status == 2 && r.stdout.isEmpty, "\(arguments): \(r.status) \(r.stdout)")
            let failure = try JSONDecoder().decode(Failure.self, from: Data(r.stderr.utf8))
            #expect(failure.error.exitCode == 2 && failure.error.message.contains(mention) && failure.error.command.hasPrefix("faultline"),
                    "\(arguments): \(r.stderr)")
            let text = try CLIRunner.run(arguments.filter { $0 != "--json" })
            #expect(text.status == 2 && !text.stderr.hasPrefix("{"), "\(text.stderr)")
        }
    }

    /// `faultline --generate-completion-script bash|zsh|fish` (ArgumentParser's generator, documented in the
    /// README) completes every subcommand.
    @Test(arguments: ["bash", "zsh", "fish"])
    func completionScriptsNameEverySubcommand(shell: String) throws {
        let r = try CLIRunner.run(["--generate-completion-script", shell])
        #expect(r.status == 0 && r.stdout.count > 1000, "\(r.stderr)")
        for command in ["demo", "train", "attack", "corrupt", "certify", "report", "predict", "calibrate", "uncertainty", "shift", "drift",
                        "selective", "slices", "labelshift", "conformal", "bounds", "inspect", "info", "bench"] {
            #expect(r.stdout.contains(command), "\(shell) completion lacks \(command)")
        }
    }

    /// Every command's --help fits an 80-column terminal (counted in characters: ε, ×, – are one each),
    /// except ArgumentParser's one-line USAGE synopsis, which it never wraps.
    @Test func helpFitsEightyColumns() throws {
        let commands = [[], ["demo"], ["report"], ["train"], ["attack"], ["corrupt"], ["certify"], ["calibrate"], ["uncertainty"],
                        ["shift", "fit"], ["shift", "score"], ["drift"], ["drift", "compare"], ["drift", "fit"], ["drift", "check"], ["drift", "stream"], ["selective"], ["conformal"], ["bounds"], ["inspect"], ["info"], ["predict"],
                        ["bench", "gemm"], ["bench", "scaling"]]
        for command in commands {
            let r = try CLIRunner.run(command + ["--help"])
            #expect(r.status == 0)
            for line in r.stdout.split(separator: "\n") where !line.hasPrefix("USAGE:") {
                #expect(line.count <= 80, "faultline \(command.joined(separator: " ")) --help: \(line.count) columns: \(line)")
            }
        }
    }
}
