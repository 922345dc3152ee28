/** Who may do what in the panel: the API's own role order (viewer < operator < admin). */
import { USER_ROLES, type UserRole } from '../../../src/api/schemas/token.ts';

export type { UserRole };

/** Whether `role` may do what `need` may. The panel hides what the API would refuse anyway. */
export function roleCan(role: UserRole, need: UserRole): boolean {
  return USER_ROLES.indexOf(role) >= USER_ROLES.indexOf(need);
}
