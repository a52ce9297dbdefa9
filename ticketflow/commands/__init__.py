"""Commands: what a caller asks the desk to do. Validated here, decided in the domain."""

from ticketflow.commands.access import IssueToken, RecordDataAccess, RevokeToken
from ticketflow.commands.base import ChangeCommand, Command
from ticketflow.commands.customer import (
    AddCustomerNote,
    ChangeCustomerTier,
    CustomerCommand,
    GiveConsent,
    RegisterCustomer,
    UpdateCustomerProfile,
    WithdrawConsent,
)
from ticketflow.commands.reply_template import (
    CreateReplyTemplate,
    ReplyTemplateCommand,
    RetireReplyTemplate,
    ReviseReplyTemplate,
)
from ticketflow.commands.team import (
    AddTeamMember,
    ChangeTeamMember,
    DeactivateTeamMember,
    FormTeam,
    ReactivateTeamMember,
    RenameTeam,
    TeamCommand,
)
from ticketflow.commands.ticket import (
    AddCollaborator,
    AddNote,
    AssignTicket,
    ChangePriority,
    ChangeTags,
    CloseTicket,
    HoldTicket,
    LinkTicket,
    LogInteraction,
    LogWork,
    MarkTicketOpen,
    MergeTicket,
    OpenTicket,
    PendTicket,
    PostReply,
    RateSatisfaction,
    RecategoriseTicket,
    RemoveCollaborator,
    ReopenTicket,
    SolveTicket,
    TicketCommand,
    TransferTicket,
)

__all__ = [
    "AddCollaborator", "AddCustomerNote", "AddNote", "AddTeamMember", "AssignTicket",
    "ChangeCommand", "ChangeCustomerTier", "ChangePriority", "ChangeTags", "ChangeTeamMember",
    "CloseTicket", "Command", "CreateReplyTemplate", "CustomerCommand", "DeactivateTeamMember", "FormTeam",
    "GiveConsent", "HoldTicket", "IssueToken", "RecordDataAccess", "RevokeToken", "LinkTicket", "LogInteraction", "LogWork", "MarkTicketOpen",
    "MergeTicket", "OpenTicket", "PendTicket", "PostReply", "RateSatisfaction",
    "ReactivateTeamMember", "RecategoriseTicket", "RegisterCustomer", "RemoveCollaborator",
    "RenameTeam", "ReopenTicket", "ReplyTemplateCommand", "RetireReplyTemplate", "ReviseReplyTemplate", "SolveTicket", "TeamCommand", "TicketCommand",
    "TransferTicket", "UpdateCustomerProfile", "WithdrawConsent",
]
