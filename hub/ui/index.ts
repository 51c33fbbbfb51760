// Public surface of the dashboard's files (the pages themselves are in web/, bundled for the browser).
export { type UiAsset, type UiAssets, uiAssetSource } from "./assets.ts";
export { bundleUi, type UiFile } from "./bundle.ts";
export { embeddedUi, setEmbeddedUi } from "./embedded.ts";
