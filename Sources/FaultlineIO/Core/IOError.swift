/// Errors reading or writing data files. Every case names the file and what was wrong, so the
/// message alone tells a user what to fix.
public struct IOError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: String, Sendable {
        case notFound, unreadable, unwritable, truncated, badMagic, badHeader, unsupportedDType
        case unsupportedFeature, shapeMismatch, invalidValue
    }

    public var kind: Kind
    /// The file (or input name) the error is about.
    public var file: String
    /// What was wrong and, where possible, what was expected.
    public var detail: String

    public init(_ kind: Kind, file: String, _ detail: String) {
        self.kind = kind
        self.file = file
        self.detail = detail
    }

    public var description: String { "\(file): \(detail)" }
}
