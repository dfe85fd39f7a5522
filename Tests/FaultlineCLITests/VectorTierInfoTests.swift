import FaultlineLinalg
import Foundation
import Testing
import _TestSupport

/// `faultline info` names the vector tier of every fused kernel and how it was chosen: the CPU's best on
/// blas, simd on the simd backend, and FAULTLINE_VECTOR_TIER's choice (stepped down to what the CPU
/// runs) on either — the opt-in of the simd backend to the C kernels.
@Suite("faultline info: vector tiers")
struct VectorTierInfoTests {
    struct Kernel: Decodable { var kernel: String; var tier: String }
    struct InfoJSON: Decodable {
        var vectorTier: String
        var vectorTierSource: String
        var vectorKernels: [Kernel]
        var simdISA: String
    }

    static func info(_ environment: [String: String?]) throws -> InfoJSON {
        let r = try CLIRunner.run(["info", "--json"], environment: environment)
        #expect(r.status == 0, "\(r.stderr)")
        return try JSONDecoder().decode(InfoJSON.self, from: Data(r.stdout.utf8))
    }

    @Test func infoNamesTheTierOfEveryKernel() throws {
        let cases: [([String: String?], Linalg.KernelTier)] = [
            (["FAULTLINE_BACKEND": nil, "FAULTLINE_VECTOR_TIER": nil], Linalg.bestTier),
            (["FAULTLINE_BACKEND": "simd", "FAULTLINE_VECTOR_TIER": nil], .simd),
            (["FAULTLINE_BACKEND": "simd", "FAULTLINE_VECTOR_TIER": "avx512"], Linalg.runnable(.avx512)),
            (["FAULTLINE_BACKEND": nil, "FAULTLINE_VECTOR_TIER": "avx2"], Linalg.runnable(.avx2)),
            (["FAULTLINE_BACKEND": nil, "FAULTLINE_VECTOR_TIER": "scalar"], .reference),
            (["FAULTLINE_BACKEND": "reference", "FAULTLINE_VECTOR_TIER": "avx512"], .reference),
        ]
        for (environment, tier) in cases {
            let info = try Self.info(environment)
            #expect(info.vectorTier == tier.rawValue, "\(environment)")
            #expect(info.vectorKernels.count == Linalg.fusedKernels.count && info.vectorKernels.allSatisfy { $0.tier == tier.rawValue }, "\(environment)")
            #expect(info.simdISA.contains("x86-64") || info.simdISA.contains("AArch64"))
        }
        let odd = try Self.info(["FAULTLINE_BACKEND": nil, "FAULTLINE_VECTOR_TIER": "avx9"])
        #expect(odd.vectorTier == Linalg.bestTier.rawValue && odd.vectorTierSource.contains("not understood"))
        let table = try CLIRunner.run(["info"], environment: ["FAULTLINE_BACKEND": nil, "FAULTLINE_VECTOR_TIER": nil])
        #expect(table.stdout.contains("vector tier") && table.stdout.contains("Philox normals") && table.stdout.contains("simd tier compiled for"))
    }
}
