import CFaultline

/// The BLAS and LAPACKE half of the C shim (`CFaultline`). Five Swift files call the shim: this one
/// (BLAS/LAPACKE), `Primitives/RowKernels.swift` (the native tier of the row kernels), `Core/PhiloxNormals.swift`
/// (AVX2 Philox normals) and FaultlineIO's `Compression/Zlib.swift` (zlib) and `Core/AtomicDirectory.swift`
/// (renameat2).
///
/// Converts `Int` dimensions to the shim's `Int32` with a trapping conversion (a dimension past
/// 2³¹−1 is a programming error for the 32-bit-integer BLAS builds Debian ships) and dispatches on the
/// scalar type. Callers have already checked shapes; these functions assume valid arguments.
public enum NativeBLAS {
    /// What the shim loaded, from where, and with which OpenBLAS core type.
    public struct Status: Sendable {
        /// Whether the BLAS library loaded and every CBLAS entry point resolved.
        public var blasLoaded: Bool
        /// Whether LAPACKE loaded and every routine resolved.
        public var lapackLoaded: Bool
        /// The BLAS library's path ("" when not loaded).
        public var blasPath: String
        /// The LAPACKE library's path ("" when not loaded).
        public var lapackPath: String
        /// The OPENBLAS_CORETYPE value in force when the library loaded ("" when none).
        public var coretypeRequested: String
        /// `user`, `cpuid` (chosen by Faultline), `FAULTLINE_CORETYPE`, or `openblas-auto`.
        public var coretypeSource: String
        /// Why loading failed ("" when it did not).
        public var error: String
    }

    /// Loads the libraries on first call (thread safe) and reports the result.
    public static var status: Status {
        let s = fl_blas_load()!.pointee
        let source: String
        switch fl_coretype_source(rawValue: UInt32(s.coretype_source)) {
        case FL_CORETYPE_USER: source = "user (OPENBLAS_CORETYPE)"
        case FL_CORETYPE_CPUID: source = "cpuid (chosen by Faultline)"
        case FL_CORETYPE_FAULTLINE_ENV: source = "FAULTLINE_CORETYPE"
        default: source = "openblas-auto"
        }
        return Status(
            blasLoaded: s.blas_loaded != 0, lapackLoaded: s.lapack_loaded != 0,
            blasPath: string(s.blas_path), lapackPath: string(s.lapack_path),
            coretypeRequested: string(s.coretype_requested), coretypeSource: source, error: string(s.error))
    }

    /// BLAS and LAPACKE both loaded: the `blas` backend can run every primitive.
    public static let isAvailable: Bool = { let s = status; return s.blasLoaded && s.lapackLoaded }()
    static var loadError: String { status.error.isEmpty ? "LAPACKE not loaded" : status.error }

    /// `openblas_get_corename()`, or nil for another BLAS or when not loaded.
    public static var coreName: String? { fl_openblas_corename().map { String(cString: $0) } }
    /// `openblas_get_config()`, or nil.
    public static var config: String? { fl_openblas_config().map { String(cString: $0) } }
    /// The BLAS thread count calls outside `withSingleThread` run with (0 when unknown). Setting it inside
    /// a `withSingleThread` scope takes effect when the last scope closes. `Linalg.setThreads` sets it too.
    public static var threads: Int {
        get { BLASThreads.shared.count }
        set { BLASThreads.shared.set(newValue) }
    }
    /// The thread count OpenBLAS would use for a call starting now: 1 inside `withSingleThread`.
    public static var activeThreads: Int { Int(fl_blas_get_num_threads()) }

    /// Runs `body` with OpenBLAS limited to one thread (its count is process-wide), then restores the
    /// configured count. Scopes on different threads nest: the first to open sets one thread, the last to
    /// close restores, and a count set meanwhile is applied then. An OpenBLAS sgemm can round differently
    /// with 1 and 2 threads, so kernels that promise thread-count independent results run their BLAS calls
    /// in such a scope and parallelise over fixed blocks themselves (`Linalg.blockedProduct`).
    public static func withSingleThread<R>(_ body: () throws -> R) rethrows -> R {
        try BLASThreads.shared.withSingleThread(body)
    }
    /// The core type Faultline would pick from cpuid ("" = leave it to OpenBLAS).
    public static var recommendedCoretype: String { String(cString: fl_cpuid_recommended_coretype()) }
    /// Number of calls made through the shim so far in this process.
    public static var callCount: UInt64 { fl_blas_call_count() }

    /// CPU identification and the features that decide the core type.
    public static var cpu: CPUFeatures {
        var f = fl_cpu_features()
        fl_cpu_features_get(&f)
        var flags: [String] = []
        if f.sse42 != 0 { flags.append("sse4.2") }
        if f.avx != 0 { flags.append("avx") }
        if f.avx2 != 0 { flags.append("avx2") }
        if f.fma != 0 { flags.append("fma") }
        if f.avx512f != 0 { flags.append("avx512f") }
        if f.avx512bw != 0 { flags.append("avx512bw") }
        if f.avx512vl != 0 { flags.append("avx512vl") }
        if f.avx512dq != 0 { flags.append("avx512dq") }
        if f.os_saves_zmm != 0 { flags.append("os-zmm") } else if f.os_saves_ymm != 0 { flags.append("os-ymm") }
        return CPUFeatures(vendor: string(f.vendor), brand: string(f.brand).trimmingSpaces,
                           family: Int(f.family), model: Int(f.model), stepping: Int(f.stepping), flags: flags)
    }

    private static func string<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    // MARK: Typed entry points (row-major)

    @inline(__always) static func i32(_ x: Int) -> Int32 { Int32(x) }  // traps on overflow

    static func gemm<T: LinalgScalar>(
        _ ta: Transpose, _ tb: Transpose, _ m: Int, _ n: Int, _ k: Int, _ alpha: T,
        _ a: UnsafePointer<T>, _ lda: Int, _ b: UnsafePointer<T>, _ ldb: Int, _ beta: T,
        _ c: UnsafeMutablePointer<T>, _ ldc: Int
    ) {
        if T.self == Float.self {
            fl_sgemm(ta.flag, tb.flag, i32(m), i32(n), i32(k), alpha as! Float, cast(a), i32(lda), cast(b), i32(ldb),
                     beta as! Float, cast(c), i32(ldc))
        } else {
            fl_dgemm(ta.flag, tb.flag, i32(m), i32(n), i32(k), alpha as! Double, cast(a), i32(lda), cast(b), i32(ldb),
                     beta as! Double, cast(c), i32(ldc))
        }
    }

    static func gemv<T: LinalgScalar>(
        _ t: Transpose, _ m: Int, _ n: Int, _ alpha: T, _ a: UnsafePointer<T>, _ lda: Int,
        _ x: UnsafePointer<T>, _ beta: T, _ y: UnsafeMutablePointer<T>
    ) {
        if T.self == Float.self {
            fl_sgemv(t.flag, i32(m), i32(n), alpha as! Float, cast(a), i32(lda), cast(x), beta as! Float, cast(y))
        } else {
            fl_dgemv(t.flag, i32(m), i32(n), alpha as! Double, cast(a), i32(lda), cast(x), beta as! Double, cast(y))
        }
    }

    static func dot<T: LinalgScalar>(_ n: Int, _ x: UnsafePointer<T>, _ y: UnsafePointer<T>) -> T {
        if T.self == Float.self { return fl_sdot(i32(n), cast(x), cast(y)) as! T }
        return fl_ddot(i32(n), cast(x), cast(y)) as! T
    }

    static func axpy<T: LinalgScalar>(_ n: Int, _ alpha: T, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>) {
        if T.self == Float.self { fl_saxpy(i32(n), alpha as! Float, cast(x), cast(y)) } else {
            fl_daxpy(i32(n), alpha as! Double, cast(x), cast(y))
        }
    }

    /// Lower triangle of C = alpha·op(A)·op(A)ᵀ + beta·C.
    static func syrkLower<T: LinalgScalar>(
        _ t: Transpose, _ n: Int, _ k: Int, _ alpha: T, _ a: UnsafePointer<T>, _ lda: Int, _ beta: T,
        _ c: UnsafeMutablePointer<T>, _ ldc: Int
    ) {
        if T.self == Float.self {
            fl_ssyrk(0, t.flag, i32(n), i32(k), alpha as! Float, cast(a), i32(lda), beta as! Float, cast(c), i32(ldc))
        } else {
            fl_dsyrk(0, t.flag, i32(n), i32(k), alpha as! Double, cast(a), i32(lda), beta as! Double, cast(c), i32(ldc))
        }
    }

    /// In place: B ← op(L)⁻¹ B (left) or B ← B op(L)⁻¹ (right); B is m×n.
    static func trsmLower<T: LinalgScalar>(
        _ side: TriangularSide, _ t: Transpose, _ m: Int, _ n: Int, _ l: UnsafePointer<T>, _ ldl: Int,
        _ b: UnsafeMutablePointer<T>, _ ldb: Int
    ) {
        let s: Int32 = side == .left ? 0 : 1
        if T.self == Float.self {
            fl_strsm(s, t.flag, i32(m), i32(n), 1, cast(l), i32(ldl), cast(b), i32(ldb))
        } else {
            fl_dtrsm(s, t.flag, i32(m), i32(n), 1, cast(l), i32(ldl), cast(b), i32(ldb))
        }
    }

    /// In place: B ← op(L)·B (left) or B ← B·op(L) (right); B is m×n.
    static func trmmLower<T: LinalgScalar>(
        _ side: TriangularSide, _ t: Transpose, _ m: Int, _ n: Int, _ l: UnsafePointer<T>, _ ldl: Int,
        _ b: UnsafeMutablePointer<T>, _ ldb: Int
    ) {
        let s: Int32 = side == .left ? 0 : 1
        if T.self == Float.self {
            fl_strmm(s, t.flag, i32(m), i32(n), 1, cast(l), i32(ldl), cast(b), i32(ldb))
        } else {
            fl_dtrmm(s, t.flag, i32(m), i32(n), 1, cast(l), i32(ldl), cast(b), i32(ldb))
        }
    }

    /// LAPACK potrf on the lower triangle (row-major); returns info.
    static func potrfLower<T: LinalgScalar>(_ n: Int, _ a: UnsafeMutablePointer<T>, _ lda: Int) -> Int {
        if T.self == Float.self { return Int(fl_spotrf_lower(i32(n), cast(a), i32(lda))) }
        return Int(fl_dpotrf_lower(i32(n), cast(a), i32(lda)))
    }

    /// LAPACK syevd: eigenvalues ascending into `w`, eigenvectors overwrite `a` as rows; returns info.
    static func syevd<T: LinalgScalar>(_ n: Int, _ a: UnsafeMutablePointer<T>, _ lda: Int, _ w: UnsafeMutablePointer<T>) -> Int {
        if T.self == Float.self { return Int(fl_ssyevd(i32(n), cast(a), i32(lda), cast(w))) }
        return Int(fl_dsyevd(i32(n), cast(a), i32(lda), cast(w)))
    }

    /// Raw `cblas_sgemm` on square row-major matrices with no Swift layer in between: the baseline the
    /// library's `gemm` is compared against in `faultline bench gemm`.
    public static func rawSquareGEMM<T: LinalgScalar>(
        n: Int, a: UnsafePointer<T>, b: UnsafePointer<T>, c: UnsafeMutablePointer<T>
    ) {
        if T.self == Float.self {
            fl_sgemm(0, 0, i32(n), i32(n), i32(n), 1, cast(a), i32(n), cast(b), i32(n), 0, cast(c), i32(n))
        } else {
            fl_dgemm(0, 0, i32(n), i32(n), i32(n), 1, cast(a), i32(n), cast(b), i32(n), 0, cast(c), i32(n))
        }
    }

    @inline(__always)
    private static func cast<T, U>(_ p: UnsafePointer<T>) -> UnsafePointer<U> {
        UnsafeRawPointer(p).assumingMemoryBound(to: U.self)
    }

    @inline(__always)
    private static func cast<T, U>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<U> {
        UnsafeMutableRawPointer(p).assumingMemoryBound(to: U.self)
    }
}

/// CPU identification as read by `cpuid`.
public struct CPUFeatures: Sendable {
    /// The vendor string (`GenuineIntel`, `AuthenticAMD`).
    public var vendor: String
    /// The processor brand string.
    public var brand: String
    /// The display family (base plus extended family).
    public var family: Int
    /// The display model (base plus extended model).
    public var model: Int
    /// The stepping.
    public var stepping: Int
    /// The ISA extensions Faultline looks at, by name (`avx2`, `fma`, `avx512f`, …).
    public var flags: [String]
}

extension Transpose {
    fileprivate var flag: Int32 { self == .none ? 0 : 1 }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
