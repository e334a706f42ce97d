export { splitArgv, fdCount, type SplitArgv, type SplitOptions } from "./argv.ts";
export {
  EXIT_RUNTIME, EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND, UsageError, CommandError, exitCodeOf, exitCodeForError, errorLine, signalName, signalNumber,
  type ProcessEnd,
} from "./exit.ts";
export { createLogger, logLevel, LOG_LEVELS } from "./log.ts";
export { runTool, defineTool, formatTable, helpText, parseToolArgv, printJson, printTable, COMMON_ARGS, type ToolSpec, type ToolContext } from "./tool.ts";
export { writeOut, writeErr, writeAll, OutputClosed, LAUNCH_FLAGS, nodeCommand } from "./output.ts";
export { saveCodeCache, codeCacheUsed, bundleRun, buildId, runWholeBundle } from "./codecache.ts";
export { waitChild, FORWARDED_SIGNALS } from "./wait.ts";
export { faultPoint } from "./fault.ts";
export { lazy } from "./lazy.ts";
export { nulBytePath, nulByteRefusal } from "./json.ts";
export { dieWithParent, PARENT_PID_ENV } from "./parent.ts";
export { startTrace, endTrace, flushTrace, span, mark, tracing, nowUs, renderTrace, laneSpans, checkTraceFile, TRACE_ENV, SLOW_SYSCALL_US, type TraceEvent } from "./trace.ts";
export { ARGV_FD_ENV, DONE_FD_ENV, encodeArgv, decodeArgv, takeArgvFd, takeDoneFd, sayDone } from "./handoff.ts";
