export * from "./schema.ts";
export { entryPath, checkSymlink, hardlinkTarget, classifyEntry, whiteoutEntry, opaqueEntry, parseReference, checkReference, type EntryKind } from "./paths.ts";
export { unpackBlob, sniffCompression, digester, type Digester, type UnpackResult } from "./unpack.ts";
export { packTree, type PackOptions } from "./pack.ts";
export {
  storePaths, withImageInUse, imageDir, layerDir, layerDiff, withStoreLock, readRefs, readImage, readLayer, listImageIds, findImage, requireImage, tagsOf, imageUsers,
  removeImage, pruneImages, tagImage, type StoredImage, type RemoveResult,
} from "./store.ts";
export { importImage, ociArch, type ImportEvent, type ImportOptions, type Imported } from "./import.ts";
export { commitImage, exportImage, type CommitOptions } from "./commit.ts";
