import FaultlineLinalg
import Foundation

/// Data sets shipped with Faultline.
public enum BundledDatasets {
    /// The 8×8 handwritten digits (UCI Optical Recognition of Handwritten Digits, CC BY 4.0; the copy
    /// scikit-learn ships): 1,797 samples, 64 features scaled from 0…16 to [0, 1], 10 classes.
    /// See `Resources/DIGITS-ATTRIBUTION.md`.
    public static func digits() throws -> LabeledDataset {
        guard let url = Bundle.module.url(forResource: "digits.csv", withExtension: "gz", subdirectory: "Resources") else {
            throw IOError(.notFound, file: "digits.csv.gz", "the bundled digits data is missing from the FaultlineIO resources")
        }
        let data = try FileAccess.read(url.path)
        let csv = try data.withUnsafeBytes { raw in
            try Zlib.gunzip(raw, file: url.path).withUnsafeBytes {
                try CSV.decode($0, name: url.path, options: .init(header: .absent, labelColumn: .index(64)))
            }
        }
        guard csv.features.rows == 1797, csv.features.columns == 64, let labels = csv.labels else {
            throw IOError(.shapeMismatch, file: url.path, "expected 1797×64 digits with labels, got \(csv.features.rows)×\(csv.features.columns)")
        }
        let features = csv.features.converted(to: Float.self).map { $0 / 16 }
        return try LabeledDataset(name: "digits", features: features, labels: labels, classCount: 10)
    }
}
