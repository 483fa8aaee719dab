// The shared test doubles live in @cinderts/testkit.
export { LocalTestRunner, RecordingRunner, failing, targetContext, type Call } from "@cinderts/testkit";
