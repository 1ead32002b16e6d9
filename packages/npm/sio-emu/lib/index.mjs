import sioEmu from "./index.js";

export const { start, binaryPath } = sioEmu;
export default sioEmu;
