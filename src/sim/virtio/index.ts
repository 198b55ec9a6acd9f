/** The virtio-net device model. */
export {
  VirtioNetModel,
  type CtrlCommand,
  type VirtioNetCounters,
  type VirtioNetFaults,
  type VirtioNetModelOptions,
} from "./virtio-model.ts";
