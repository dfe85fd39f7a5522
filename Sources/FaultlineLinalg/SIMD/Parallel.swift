import Dispatch

/// Fork–join over independent tasks for the `simd` kernels.
enum Parallel {
    /// Runs `body(0..<tasks)`, on up to `threads` threads when both exceed 1. Each task must write
    /// memory no other task touches; results must not depend on which thread ran a task.
    static func forEach(_ tasks: Int, threads: Int, _ body: (Int) -> Void) {
        if tasks <= 1 || threads <= 1 {
            for t in 0..<tasks { body(t) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let box = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: tasks) { box.value($0) }
        }
    }
}

/// Carries a value the caller knows is safe to share across the fork–join above.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
