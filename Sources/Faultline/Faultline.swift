// The umbrella module: `import Faultline` brings in every Faultline module.
@_exported import FaultlineLinalg
@_exported import FaultlineIO
@_exported import FaultlineNN
@_exported import FaultlineInputs
@_exported import FaultlineStatistics
@_exported import FaultlineShift
@_exported import FaultlineRobustness
@_exported import FaultlineReliability
@_exported import FaultlineAnalysis
@_exported import FaultlineReport
