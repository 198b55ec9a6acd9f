/** The behavioural Intel 82599 model (see ixgbe-model.ts). */
export {
  Ixgbe82599Model, IXGBE_MODEL_QUEUES, IXGBE_MODEL_BAR0_SIZE, ixgbeFamilyOf,
  type Ixgbe82599ModelOptions, type Ixgbe82599Faults, type Ixgbe82599Nvm, type IxgbeFamily,
} from "./ixgbe-model.ts";
export type { Ixgbe82599Counters } from "./model-stats.ts";
export { crc32, withFcs } from "../../net/crc32.ts";
