export * from "./rtnl.ts";
export { Rtnl, NetlinkError, type Result } from "./client.ts";
export * from "./ip.ts";
export { chooseSubnet, checkSubnet, allocateAddress, fixedAddressRefusal, gatewayOf, DEFAULT_POOL, DEFAULT_PREFIX, type Taken } from "./subnet.ts";
export {
  Records, Lease, NetworkRecord, PublishedPort, Protocol, RECORDS_VERSION, DEFAULT_TABLE, netPaths, readRecords, writeRecords, withRecords,
  emptyRecords, type NetPaths,
} from "./records.ts";
export { parsePublish, portString, portsCollide, checkOwnPorts, checkPortsFree, choosePorts, ephemeralRange, publishedPorts, hostListeners, decodeProcAddress, type Listener } from "./ports.ts";
export { rulesetFor, syncRuleset, loadRuleset, bootId } from "./nft.ts";
export {
  hostsFile, resolvConf, writeInPlace, writeEtcFiles, writeHostsFile, hostHostsFile, extraHostLines, withDns, parseEtcExtras, etcExtrasFor, etcExtrasArgv, hasEtcExtras, ETC_ARGS, FALLBACK_NAMESERVERS, ETC_FILES,
  type EtcFiles, type EtcExtras, type HostEntry, type ResolvOptions,
} from "./etc.ts";
export {
  setupBridge, setupNone, teardown, listNetworks, removeNetworks, etcFilesFor, etcPaths, vethName, checkId, checkName, checkNetworkName, parseIp,
  parseSubnet, checkNotHostNetns, linuxNetKernel, DEFAULT_NETWORK, CONTAINER_IFNAME,
  type NetKernel, type NetnsRef, type SetupOptions, type SetupResult, type TeardownResult, type NetworkInfo, type EtcMode,
} from "./network.ts";
