import FaultlineLinalg
import _TestSupport
import Testing

@Suite("backend selection and the BLAS shim")
struct BackendTests {
    @Test func blasLoadsAndReportsACore() {
        let status = NativeBLAS.status
        #expect(status.blasLoaded && status.lapackLoaded, "BLAS did not load: \(status.error)")
        #expect(NativeBLAS.coreName != nil)
        #expect(NativeBLAS.threads >= 1)
    }

    /// With OPENBLAS_CORETYPE unset, Faultline's cpuid choice is what OpenBLAS runs (never Prescott
    /// on a CPU with AVX2).
    @Test func coreTypeFollowsCpuid() throws {
        let status = NativeBLAS.status
        guard status.coretypeSource.hasPrefix("cpuid") else { return }  // the user chose a core type
        #expect(NativeBLAS.coreName == status.coretypeRequested)
        if NativeBLAS.cpu.flags.contains("avx2") { #expect(NativeBLAS.coreName != "Prescott") }
    }

    /// Proves which path ran: the shim's own call counter moves for `.blas` and the Swift-side counter
    /// for `.simd` and `.reference`.
    @Test func callCountersShowThePathThatRan() throws {
        let a: Matrix<Float> = Oracle.random(8, 8, seed: 1)
        let shimBefore = NativeBLAS.callCount
        let blasBefore = Linalg.callCount(.blas)
        _ = try Linalg.matmul(a, a, backend: .blas)
        #expect(NativeBLAS.callCount > shimBefore)
        #expect(Linalg.callCount(.blas) > blasBefore)
        for backend in [Backend.simd, .reference] {
            let before = Linalg.callCount(backend)
            _ = try Linalg.matmul(a, a, backend: backend)
            #expect(Linalg.callCount(backend) > before)
        }
    }

    @Test func philoxMatchesRandom123KnownAnswers() {
        let zero = Philox.block(key: (0, 0), counter: (0, 0, 0, 0))
        #expect([zero.0, zero.1, zero.2, zero.3] == [0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8])
        let ones = Philox.block(key: (.max, .max), counter: (.max, .max, .max, .max))
        #expect([ones.0, ones.1, ones.2, ones.3] == [0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD])
        let pi = Philox.block(key: (0xA409_3822, 0x299F_31D0), counter: (0x243F_6A88, 0x85A3_08D3, 0x1319_8A2E, 0x0370_7344))
        #expect([pi.0, pi.1, pi.2, pi.3] == [0xD16C_FE09, 0x94FD_CCEB, 0x5001_E420, 0x2412_6EA1])
    }
}
