/// Errors reading or writing data files. Every case names the file and what was wrong, so the
/// message alone tells a user what to fix.
public struct IOError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What kind of problem the file has.
    public enum Kind: String, Sendable {
        /// No such file; not readable (permissions, a directory); not writable; shorter than its header says; not the format its name says; a malformed header; an element type the format does not allow.
        case notFound, unreadable, unwritable, truncated, badMagic, badHeader, unsupportedDType
        /// A valid file using a feature Faultline does not read (an .npy format version other than 1–3, Fortran order where rows are split); a shape that does not fit what was asked; a value that is not allowed (a label, a name, a size).
        case unsupportedFeature, shapeMismatch, invalidValue
    }

    /// What kind of problem it is.
    public var kind: Kind
    /// The file (or input name) the error is about.
    public var file: String
    /// What was wrong and, where possible, what was expected.
    public var detail: String

    /// An error about `file`, with `detail` saying what was wrong and what was expected.
    public init(_ kind: Kind, file: String, _ detail: String) {
        self.kind = kind
        self.file = file
        self.detail = detail
    }

    public var description: String { "\(file): \(detail)" }
}
