// Prints one plain closing line, "tests: N passed, N failed, N skipped", that any CI can read.
export default class PlainSummaryReporter {
  onRunComplete(_contexts, results) {
    const { numPassedTests, numFailedTests, numPendingTests, numRuntimeErrorTestSuites } = results;
    const failed = numFailedTests + numRuntimeErrorTestSuites;
    console.log(`tests: ${numPassedTests} passed, ${failed} failed, ${numPendingTests} skipped`);
  }
}
