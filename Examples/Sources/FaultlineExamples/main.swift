// Faultline from Swift: train a small classifier on the bundled digits, then ask why it fails with one
// call — FailureReport.build measures calibration, uncertainty, distribution shift, adversarial
// robustness with a certified lower bound and conformal coverage, and attributes every test error.
// Every step checks its result, so this program doubles as an integration test of the public API
// (`scripts/test` runs it).
import Faultline
import Foundation

func check(_ condition: Bool, _ message: String) {
    if !condition {
        FileHandle.standardError.write(Data("example failed: \(message)\n".utf8))
        exit(1)
    }
}

// 1. Data and a model.
let split = try BundledDatasets.digits().stratifiedSplit(seed: 0)
var model = try ModelSpec.build("linear:64-64,relu,linear:64-10", seed: 0)
try model.train(on: split.train, validation: split.calibration,
                options: TrainingOptions(epochs: 20, batchSize: 32, optimizer: .adam(learningRate: 2e-3), seed: 0, patience: 5))
let test = split.test

// 2. The whole failure analysis: the model, the data (with a noisy copy of the test set as a shift), the options.
var options = FailureReport.Options()
options.epsilons = [0, 0.02, 0.05]
options.robustnessSamples = 200
let data = FailureReport.Data(train: split.train, test: test, calibration: split.calibration,
                              shifted: [.gaussianNoise(test.features, sigma: 0.3, seed: 1, labels: test.labels)],
                              imageShape: ImageShape(channels: 1, height: 8, width: 8))
let report = try FailureReport.build(model: model, data: data, options: options)

// 3. Reliability: accuracy, calibration before and after temperature scaling, conformal coverage.
let r = report.reliability
print(String(format: "test accuracy %.4f; ECE %.4f → %.4f with T = %.3f", r.accuracy, r.calibration.ece,
             r.calibrationAfterTemperature?.ece ?? .nan, r.temperature ?? .nan))
check(r.accuracy > 0.9, "the MLP should learn the digits")
check((r.calibrationAfterTemperature?.nll ?? .infinity) <= r.calibration.nll + 0.02,
      "temperature scaling fitted on held-out data should not hurt the test NLL much")
let conformal = report.conformal.first { $0.alpha == 0.1 }!
print(String(format: "conformal (α = 0.1): coverage %.4f, mean set size %.2f", conformal.coverage, conformal.meanSetSize))
check(conformal.coverage >= 0.85, "coverage should be close to 0.9 or above")

// 4. Shift: the noisy copy is detected by the Mahalanobis score fitted on the training inputs.
let noisy = report.shift[0]
print(String(format: "%@: AUROC %.4f, %d errors, %d flagged", noisy.shift, noisy.mahalanobisAUROC, noisy.errors ?? 0, noisy.flaggedErrors ?? 0))
check(noisy.mahalanobisAUROC > 0.9, "σ = 0.3 noise should be easy to detect")

// 5. Robustness: APGD (an upper bound on robust accuracy) against CROWN (a certified lower bound).
for row in report.robustness {
    let certified = row.certifiedCROWN ?? 0
    print(String(format: "ε = %.2f: certified %.4f ≤ robust ≤ %.4f (APGD-CE)", row.epsilon, certified, row.apgdCE))
    check(certified <= row.apgdCE, "a certificate can never exceed what an attack leaves")
    check(row.inconsistencies == [], "no certified sample may be broken")
}

// 6. Why each test row fails, and the report files a person reads.
for category in FailureAttribution.Category.allCases { print("\(category.rawValue): \(report.attribution.count(category))") }
check(report.attribution.categories.filter(\.isError).count == Int((1 - r.accuracy) * Double(test.count) + 0.5),
      "every wrong prediction is attributed to exactly one failure")
let files = try FailureReportRenderer.files(report)
check(files["report.html"] != nil && files["robustness.svg"] != nil, "the renderer writes the page and its plots")
print("all examples passed")
