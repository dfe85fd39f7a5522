import ArgumentParser
import FaultlineInputs
import FaultlineLinalg
import FaultlineNN
import FaultlineReport
import Foundation

/// A command that runs on every rank of an `mpirun` job, each rank on its own rows (docs/SCALING.md).
/// Every other command runs on rank 0 only when launched by mpirun; the other ranks exit at once.
protocol DistributedCommand {}

/// The job this `faultline` process belongs to, fixed before the command runs.
enum Job {
    /// The communicator: MPI's world when launched by mpirun, else one process.
    nonisolated(unsafe) static var world: any Communicator = SingleProcessCommunicator()
    /// True while a `DistributedCommand` runs on a job of several ranks.
    nonisolated(unsafe) static var distributed = false
    /// True on ranks other than 0: they print nothing (reports, errors and progress come from rank 0).
    static var quiet: Bool { world.rank != 0 }

    /// Joins the MPI job when mpirun launched this process (loading libmpi then; never otherwise).
    static func join() throws {
        world = try Communicators.world()
        ProgressBar.silentRank = world.rank != 0
    }

    /// A rank's rows of N: the even split, or all of them on one process.
    static func evenRows(_ n: Int) -> Range<Int> { RowSplit.even(rows: n, rank: world.rank, size: world.size) }
    static func blockRows(_ n: Int) -> Range<Int> { RowSplit.blockAligned(rows: n, rank: world.rank, size: world.size) }

    /// This rank's rows `evenRows(N)` of a labelled input (--x/--y, or a CSV --x with --label-column):
    /// a .npy is read from its own part of the file, other files are read whole and sliced; labels are
    /// read whole and range-checked against the model. Checks the rows against `box` (row numbers in
    /// messages are the file's). Returns the rows, their labels, their range and N.
    static func labeledShard(x: String, y: String?, labelColumn: String?, model: some DifferentiableClassifier,
                             box: InputBox) throws -> (inputs: Matrix<Float>, labels: [Int], rows: Range<Int>, total: Int) {
        let shape = ModelShape(model)
        let shard: (Matrix<Float>, [Int], Range<Int>, Int)
        if labelColumn != nil {  // a CSV holding its labels: read whole, this rank's rows kept
            let (all, labels) = try Inputs.labeled(x: x, "--x", y: y, "--y", labelColumn: labelColumn, model: shape)
            let range = evenRows(all.rows)
            shard = (all.gatherRows(Array(range)), Array(labels[range]), range, all.rows)
        } else {
            guard let y else { throw InputError("--y is required (or --label-column COLUMN when --x is a CSV with its labels)") }
            let s = try Inputs.featureShard(x, option: "--x", finite: true, rows: evenRows)
            if s.matrix.rows > 0 { try Inputs.modelInput(s.matrix, "--x", x, model: shape) }
            let labels = try Inputs.labels(y, option: "--y", classes: shape.classes)
            guard labels.count == s.total else { throw InputError("--x \(x) has \(s.total) rows but --y \(y) has \(labels.count) labels") }
            shard = (s.matrix, Array(labels[s.rows]), s.rows, s.total)
        }
        try Inputs.checkBox(box, model: model, x: shard.0, "--x", x, firstRow: shard.2.lowerBound)
        return shard
    }

    /// Runs a step whose errors depend only on data every rank holds (a library call after its own
    /// collectives): an error becomes the same `RankFailure` on every rank, reported once by rank 0.
    static func uniformly<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error where !(error is RankFailure) && world.size > 1 {
            throw RankFailure(everyRank: Inputs.inputErrorMessage(error) ?? "\(error)", size: world.size)
        }
    }

    /// Handles an error of a distributed command on a job of several ranks: a `RankFailure` (every rank
    /// threw it at the same step) is reported by rank 0 and ends every rank with `code`; any other error
    /// happened on this rank alone, so the others may be waiting in a collective: it is printed naming
    /// this rank and the whole job is aborted (MPI_Abort), never left hanging.
    static func fail(_ message: String, error: Error, command: String, code: Int32) -> Int32 {
        if error is RankFailure {
            if !quiet { reportError(message, command: command, exitCode: code) }
            return code
        }
        world.abort("\(command): rank \(world.rank) of \(world.size): \(message)", code: code)
    }
}
