import ArgumentParser
import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation

/// `faultline bench pgd`: W2's PGD-20 and FGSM on the 784-512-512-10 MLP.
struct PGDBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pgd",
        abstract: "Time PGD-20 (ε = 0.3, α = 0.01) and FGSM on W2's MLP, N = 1024, against the GEMM bound; with --data, compare with the peers' examples.",
        discussion: """
            Reads DATA/mlp.safetensors, pgd_x.npy, pgd_y.npy and pgd_delta0.npy (Benchmarks/peers/make_data.py). Variants: no start \
            (comparable bit for bit with the torch loop and torchattacks), the shared start δ0, and the shared start \
            with per-sample early stopping. When DATA/peer_out/w2_adv_*.npy exist (written by Benchmarks/peers/run_peers.py), the \
            largest difference from the torch loop's examples is reported.
            """)

    @OptionGroup var options: BenchOptions

    func run() throws {
        guard let data = options.data else { throw ValidationError("give --data DIR (written by Benchmarks/peers/make_data.py)") }
        let system = SystemReport.current()
        if !options.json { print(system.headline) }
        let model = try Sequential.load(weights: data + "/mlp.safetensors", spec: NNBenchmark.spec)
        let x = try NPY.readMatrix(data + "/pgd_x.npy", as: Float.self)
        let y = try NPY.read(data + "/pgd_y.npy").values(as: Double.self).map { Int($0) }
        let delta0 = try NPY.readMatrix(data + "/pgd_delta0.npy", as: Float.self)
        let n = x.rows
        var pgd = GradientAttack(epsilon: 0.3, stepSize: 0.01, steps: 20)
        var variants: [(String, GradientAttack, Matrix<Float>?, String?)] = [
            ("PGD-20 no start", pgd, nil, "w2_adv_pgd_torchloop_nostart.npy"),
            ("PGD-20 start δ0", pgd, delta0, "w2_adv_pgd_torchloop_shared_start.npy"),
        ]
        pgd.earlyStop = true
        variants.append(("PGD-20 start δ0, early stop", pgd, delta0, nil))
        variants.append(("FGSM", .fgsm(epsilon: 0.3), nil, "w2_adv_fgsm_torchloop.npy"))
        var rows: [BenchRow] = []
        let buffers = AttackWorkspace(for: model, capacity: n)  // reused, as a sweep over ε would
        for (name, attack, start, reference) in variants {
            var times: [Double] = []
            var result: GradientAttack.Result?
            for round in 0...options.reps {
                let t = try Timing.seconds { result = try attack.run(model, x, labels: y, start: start, workspace: buffers) }
                if round > 0 { times.append(t) }
            }
            let r = result!
            var key = String(format: "rob.acc %.4f", r.robustAccuracy)
            if attack.earlyStop {
                let steps = r.successStep.compactMap { $0 }
                key += String(format: "; %d samples stopped early, mean step %.1f", steps.count, Double(steps.reduce(0, +)) / Double(max(steps.count, 1)))
            }
            if let reference, let peer = try? NPY.readMatrix(data + "/peer_out/" + reference, as: Float.self), peer.count == r.adversarial.count {
                let diff = zip(r.adversarial.elements, peer.elements).map { abs($0 - $1) }
                key += String(format: "; vs torch loop: max|d| %.1e, frac |d|>1e-4 %.1e", diff.max() ?? 0,
                              Double(diff.filter { $0 > 1e-4 }.count) / Double(diff.count))
            }
            rows.append(BenchRow(workload: "W2 pgd", peer: "\(name): faultline", times_s: times,
                                 throughput: Double(n) / Timing.median(times), throughput_unit: "ex/s", key: key))
        }
        try BenchReport(system: system, rows: rows, summary: []).emit(options, unit: "ex/s", digits: 0)
    }
}
