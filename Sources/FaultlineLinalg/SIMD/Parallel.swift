import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Fork–join over independent tasks for the `simd` kernels.
enum Parallel {
    /// Runs `body(0..<tasks)`, on up to `threads` threads when both exceed 1. Each task must write
    /// memory no other task touches; results must not depend on which thread ran a task. Called from
    /// inside a task of another `forEach` it runs its tasks in order on the calling thread: a task never
    /// forks again (the outer loop already occupies the threads), so a kernel called per block of a
    /// parallel loop (e.g. `Linalg.blockedProduct`) runs single-threaded.
    static func forEach(_ tasks: Int, threads: Int, _ body: (Int) -> Void) {
        if tasks <= 1 || threads <= 1 || insideTask {
            for t in 0..<tasks { body(t) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let box = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: tasks) { task in
                let outer = pthread_getspecific(taskKey)
                pthread_setspecific(taskKey, UnsafeRawPointer(bitPattern: 1))
                box.value(task)
                pthread_setspecific(taskKey, outer)
            }
        }
    }

    /// Whether the calling thread is running a task of `forEach`.
    static var insideTask: Bool { pthread_getspecific(taskKey) != nil }

    /// Thread-local marker of a running task (non-nil inside one).
    private static let taskKey: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()
}

/// Carries a value the caller knows is safe to share across the fork–join above.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
