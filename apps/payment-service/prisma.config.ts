// Offline Prisma CLI configuration, shared by every service: see tools/prisma-config.ts.
import { servicePrismaConfig } from "../../tools/prisma-config.ts";

export default servicePrismaConfig("payment-service");
