// Faultline from Swift: train a small classifier on the bundled digits, then ask why it fails —
// calibration, uncertainty, distribution shift, adversarial robustness with a certified lower bound,
// and a conformal guarantee. Every step checks its result, so this program doubles as an
// integration test of the public API (`scripts/test` runs it).
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
let accuracy = try model.accuracy(on: test)
print(String(format: "test accuracy %.4f", accuracy))
check(accuracy > 0.9, "the MLP should learn the digits")

// 2. Calibration before and after temperature scaling (fitted on the calibration split).
let logits = try model.logits(test.features)
let temperature = try TemperatureScaling.fit(logits: model.logits(split.calibration.features), labels: split.calibration.labels)
let before = try CalibrationMetrics.compute(logits: logits, labels: test.labels)
let after = try CalibrationMetrics.compute(logits: temperature.apply(logits), labels: test.labels)
print(String(format: "ECE %.4f → %.4f with T = %.3f; NLL %.4f → %.4f", before.ece, after.ece, temperature.temperature, before.nll, after.nll))
check(after.nll <= before.nll + 0.02, "temperature scaling fitted on held-out data should not hurt the test NLL much")

// 3. Distribution shift: a Mahalanobis detector on the inputs, scored on a noisy copy of the test set.
var fit = GaussianFit(dimension: 64, classes: 10)
try fit.update(split.train.features, labels: split.train.labels)
let detector = try MahalanobisDetector.ledoitWolf(fit, x: split.train.features, labels: split.train.labels)
var rng = Philox(seed: 1)
let noisy = test.features.map { min(max($0 + Float(0.3 * rng.normal()), 0), 1) }
let detection = try DetectionMetrics.compute(inDistribution: detector.score(test.features), outOfDistribution: detector.score(noisy))
print(String(format: "Ledoit–Wolf shrinkage %.4f; noisy inputs detected with AUROC %.4f", detector.shrinkage, detection.auroc))
check(detection.auroc > 0.9, "σ = 0.3 noise should be easy to detect")

// 4. Robustness: APGD (an upper bound on robust accuracy) against CROWN (a certified lower bound).
let epsilon: Float = 0.02
let attacked = try APGDAttack(epsilon: epsilon, steps: 50).run(model, test.features, labels: test.labels)
let certified = try BoundPropagation(model).certify(test.features, labels: test.labels, region: .init(epsilon: epsilon), method: .crown)
let lower = Double(certified.filter { $0 }.count) / Double(test.count)
print(String(format: "ε = %.2f: certified %.4f ≤ robust ≤ %.4f (APGD-CE)", epsilon, lower, attacked.robustAccuracy))
check(lower <= attacked.robustAccuracy, "a certificate can never exceed what an attack leaves")
check(!zip(certified, attacked.success).contains { $0 && $1 }, "no certified sample may be broken")

// 5. A conformal guarantee on the test set.
let calibrationProbabilities = try Linalg.softmaxRows(model.logits(split.calibration.features))
let conformal = try SplitConformal(calibration: calibrationProbabilities, labels: split.calibration.labels, alpha: 0.1)
let sets = try conformal.predict(Linalg.softmaxRows(logits))
let (coverage, size) = SplitConformal.evaluate(sets: sets, labels: test.labels)
print(String(format: "conformal (α = 0.1): coverage %.4f, mean set size %.2f", coverage, size))
check(coverage >= 0.85, "coverage should be close to 0.9 or above")
print("all examples passed")
